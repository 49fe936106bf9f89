"""The HTTP API's contract, pure: request bodies in, validated items or an :class:`ApiError` out;
entities in, response bodies out; and the OpenAPI document that describes exactly these rules.

No sockets, no event loop: :mod:`streams.serve.server` reads the bytes and writes what this
module returns. The OpenAPI document is built from the same :class:`RequestLimits` the parser
enforces, and a test checks the running server against it.

Offsets (``start``, ``end``) count Unicode code points, as Python's ``str`` and the entity events
do: ``text[start:end]`` is the mention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.codecs import EntitySpan, ModelInfo
from streams.settings import ServeSettings

ENTITIES_PATH = "/v1/entities"
#: Digits kept of an entity's score (as ``nerstream annotate`` prints it).
SCORE_DIGITS = 4


@dataclass(frozen=True)
class RequestLimits:
    """What one request may hold (the ``serve.*`` settings of the same names)."""

    max_texts: int
    max_text_chars: int
    max_request_chars: int
    max_body_bytes: int

    @classmethod
    def from_settings(cls, serve: ServeSettings) -> RequestLimits:
        return cls(
            max_texts=serve.max_texts,
            max_text_chars=serve.max_text_chars,
            max_request_chars=serve.max_request_chars,
            max_body_bytes=serve.max_body_bytes,
        )


class ApiError(Exception):
    """A request the API answers with an error: HTTP status, stable code, message, and for a
    limit the setting that sets it and its value."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        limit: str = "",
        limit_value: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.limit = limit
        self.limit_value = limit_value
        #: Extra response headers (``WWW-Authenticate``, ``Retry-After``, ``Allow``).
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.limit:
            error["limit"] = self.limit
            error["max"] = self.limit_value
        return {"error": error}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def over_limit(
    status: int, setting: str, value: int, message: str, headers: dict[str, str] | None = None
) -> ApiError:
    """An error naming the ``serve.*`` setting that was exceeded."""
    return ApiError(
        status,
        "limit_exceeded",
        message,
        limit=f"serve.{setting}",
        limit_value=value,
        headers=headers,
    )


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is needed",
        headers={"WWW-Authenticate": "Bearer"},
    )


def too_large_body(limits: RequestLimits) -> ApiError:
    return over_limit(
        413,
        "max_body_bytes",
        limits.max_body_bytes,
        f"the request body has more than {limits.max_body_bytes} bytes",
    )


@dataclass(frozen=True)
class RequestItem:
    """One text to tag; ``id`` and ``source`` only in the ``records`` form, echoed back."""

    text: str
    id: str | None = None
    source: str | None = None


_RECORD_FIELDS = {"id": True, "text": True, "source": False}  # name -> required


def parse_request(body: bytes, limits: RequestLimits) -> list[RequestItem]:
    """The items of a ``POST /v1/entities`` body, or an :class:`ApiError` (400 or 413)."""
    if len(body) > limits.max_body_bytes:
        raise too_large_body(limits)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the body is not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    try:
        document = json.loads(decoded, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to convert.
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise bad_request(f"the body is not valid JSON: {detail}") from exc
    if not isinstance(document, dict):
        raise bad_request('the body must be a JSON object: {"texts": [...]} or {"records": [...]}')
    forms = [key for key in ("texts", "records") if key in document]
    unknown = sorted(set(document) - {"texts", "records"})
    if unknown or len(forms) != 1:
        raise bad_request(
            'the body must have exactly one of "texts" or "records" and nothing else'
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    entries = document[forms[0]]
    if not isinstance(entries, list) or not entries:
        raise bad_request(f'"{forms[0]}" must be a non-empty array')
    if len(entries) > limits.max_texts:
        raise over_limit(
            413,
            "max_texts",
            limits.max_texts,
            f"{len(entries)} {forms[0]} in one request; at most {limits.max_texts}",
        )
    items = [
        _text_item(entry, index) if forms[0] == "texts" else _record_item(entry, index)
        for index, entry in enumerate(entries)
    ]
    total = 0
    for index, item in enumerate(items):
        if len(item.text) > limits.max_text_chars:
            raise over_limit(
                413,
                "max_text_chars",
                limits.max_text_chars,
                f"{forms[0]}[{index}] has {len(item.text)} characters; "
                f"at most {limits.max_text_chars}",
            )
        total += len(item.text)
    if total > limits.max_request_chars:
        raise over_limit(
            413,
            "max_request_chars",
            limits.max_request_chars,
            f"the request's texts have {total} characters; at most {limits.max_request_chars}",
        )
    return items


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a string, got {_json_type(value)}")
    try:
        # JSON escapes can spell lone surrogates ("\\ud800"): not text, and not encodable back.
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_request(f"{where} is not valid Unicode (a lone surrogate)") from exc
    return value


def _text_item(entry: Any, index: int) -> RequestItem:
    return RequestItem(_string(entry, f"texts[{index}]"))


def _record_item(entry: Any, index: int) -> RequestItem:
    where = f"records[{index}]"
    if not isinstance(entry, dict):
        raise bad_request(f"{where} must be an object, got {_json_type(entry)}")
    unknown = sorted(set(entry) - set(_RECORD_FIELDS))
    if unknown:
        raise bad_request(f"{where} has unknown field(s): {', '.join(unknown)}")
    values: dict[str, str | None] = {}
    for name, required in _RECORD_FIELDS.items():
        if name in entry:
            values[name] = _string(entry[name], f"{where}.{name}")
        elif required:
            raise bad_request(f'{where} needs a string "{name}"')
    text = values.pop("text")
    assert text is not None
    return RequestItem(text, **values)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def entity_json(span: EntitySpan) -> dict[str, Any]:
    return {
        "type": span.type,
        "text": span.text,
        "start": span.start,
        "end": span.end,
        "score": round(span.score, SCORE_DIGITS),
    }


def response_body(
    items: Sequence[RequestItem], spans: Sequence[Sequence[EntitySpan]], model: ModelInfo
) -> dict[str, Any]:
    """The 200 body: the model, and per item (in request order) its entities."""
    results = []
    for item, item_spans in zip(items, spans, strict=True):
        result: dict[str, Any] = {}
        if item.id is not None:
            result["id"] = item.id
        if item.source is not None:
            result["source"] = item.source
        result["entities"] = [entity_json(span) for span in item_spans]
        results.append(result)
    return {"model": {"name": model.name, "version": model.version}, "results": results}


def encode_json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the OpenAPI document ----------------------------------------------------------------------


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(limits: RequestLimits, *, auth: bool, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 of this server with these limits (JSON Schema 2020-12 schemas)."""
    text = {"type": "string", "maxLength": limits.max_text_chars}
    array = {"type": "array", "minItems": 1, "maxItems": limits.max_texts}
    entities_request = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"texts": {**array, "items": text}},
                "required": ["texts"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "records": {
                        **array,
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "text": text,
                                "source": {"type": "string"},
                            },
                            "required": ["id", "text"],
                            "additionalProperties": False,
                        },
                    }
                },
                "required": ["records"],
                "additionalProperties": False,
            },
        ],
        "description": (
            f"One of the two forms. Also: at most {limits.max_request_chars} characters in all "
            f"texts together (serve.max_request_chars) and {limits.max_body_bytes} bytes of "
            "body (serve.max_body_bytes); the body must be UTF-8."
        ),
    }
    entity = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "text": {"type": "string", "description": "text[start:end]"},
            "start": {"type": "integer", "minimum": 0, "description": "code-point offset"},
            "end": {"type": "integer", "minimum": 1, "description": "code-point offset"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["type", "text", "start", "end", "score"],
        "additionalProperties": False,
    }
    entities_response = {
        "type": "object",
        "properties": {
            "model": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                "required": ["name", "version"],
                "additionalProperties": False,
            },
            "results": {
                "type": "array",
                "description": "One per text or record, in request order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "source": {"type": "string"},
                        "entities": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Entity"},
                        },
                    },
                    "required": ["entities"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["model", "results"],
        "additionalProperties": False,
    }
    error = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "limit": {"type": "string", "description": "the serve.* setting exceeded"},
                    "max": {"type": "integer"},
                },
                "required": ["code", "message"],
                "additionalProperties": False,
            }
        },
        "required": ["error"],
        "additionalProperties": False,
    }
    probe = {"description": "a JSON status", "content": {"application/json": {"schema": {}}}}
    entities_operation: dict[str, Any] = {
        "summary": "Named entities of each text",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/EntitiesRequest"}}
            },
        },
        "responses": {
            "200": {
                "description": "entities per text",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/EntitiesResponse"}
                    }
                },
            },
            "400": _error_response("malformed JSON, wrong types, or a body that is not UTF-8"),
            "413": _error_response("a limit of the request exceeded (named in error.limit)"),
            "429": _error_response("serve.max_pending_requests reached; retry later"),
            "500": _error_response("the model failed on a text"),
            "503": _error_response("the server is shutting down"),
        },
    }
    components: dict[str, Any] = {
        "schemas": {
            "EntitiesRequest": entities_request,
            "EntitiesResponse": entities_response,
            "Entity": entity,
            "Error": error,
        }
    }
    if auth:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        entities_operation["security"] = [{"bearer": []}]
        entities_operation["responses"]["401"] = _error_response("missing or wrong bearer token")
    return {
        "openapi": "3.1.0",
        "info": {"title": "nerstream", "version": version},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": {
            ENTITIES_PATH: {"post": entities_operation},
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": probe}}},
            "/readyz": {
                "get": {
                    "summary": "readiness: the model answered its warm-up call",
                    "responses": {"200": probe, "503": probe},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": components,
    }
