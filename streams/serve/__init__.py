"""``nerstream serve``: a synchronous HTTP/JSON API over the NER model, with dynamic batching.

Layers: :mod:`.server` (aiohttp: routes, admission, auth) over :mod:`.dispatcher` (merging
requests into model calls on one inference thread) and :mod:`.metrics`; the pure rules below
them: :mod:`.api` (the request/response contract and its OpenAPI document) and
:mod:`.coalesce` (when a call starts, which requests it takes).
"""
