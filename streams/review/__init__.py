"""``nerstream review``: people correct the worker's uncertain predictions in a local web app.

Rooms: :mod:`.tasks` (the review item, its corrections and the corpus line they become; pure),
:mod:`.labelstudio` (Label Studio task/annotation JSON in and out; pure), :mod:`.store` (the
append-only decision log and the leases that keep two reviewers off one task), :mod:`.sources`
(tasks from a JSONL file or the review topic) and :mod:`.web` (the aiohttp app and its page).

Does not belong here: routing records to review (``streams.worker.review``) and training on the
corrections (``training``, which reads them as an ordinary JSONL corpus).
"""
