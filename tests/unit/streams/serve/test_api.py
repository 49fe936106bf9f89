"""streams.serve.api: request parsing, every 400/413 case, response shape, OpenAPI schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas.codecs import EntitySpan, ModelInfo
from streams.serve.api import (
    ApiError,
    RequestItem,
    RequestLimits,
    openapi_document,
    parse_request,
    response_body,
)

LIMITS = RequestLimits(max_texts=3, max_text_chars=10, max_request_chars=25, max_body_bytes=500)


def body(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def rejected(raw: bytes, limits: RequestLimits = LIMITS) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(raw, limits)
    return caught.value


def test_both_forms_parse_to_items_in_order() -> None:
    assert parse_request(body({"texts": ["北京", ""]}), LIMITS) == [
        RequestItem("北京"),
        RequestItem(""),
    ]
    records = {"records": [{"id": "a", "text": "上海"}, {"id": "b", "text": "x", "source": "s"}]}
    assert parse_request(body(records), LIMITS) == [
        RequestItem("上海", id="a"),
        RequestItem("x", id="b", source="s"),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff{}", "not valid UTF-8"),
        (b"{nope", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"texts": [NaN]}', "not valid JSON"),
        (b"[" * 200 + b"]" * 200, "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"texts": [1' + b"0" * 5000 + b"]}", "not valid JSON"),
        (b'["a"]', "must be a JSON object"),
        (b"{}", "exactly one of"),
        (b'{"texts": ["a"], "records": []}', "exactly one of"),
        (b'{"texts": ["a"], "extra": 1}', "unknown: extra"),
        (b'{"texts": "a"}', "non-empty array"),
        (b'{"texts": []}', "non-empty array"),
        (b'{"texts": [1]}', "texts[0] must be a string, got number"),
        (b'{"texts": ["a", null]}', "texts[1] must be a string, got null"),
        (b'{"texts": ["\\ud800"]}', "texts[0] is not valid Unicode"),
        (b'{"records": ["a"]}', "records[0] must be an object, got string"),
        (b'{"records": [{"text": "a"}]}', 'records[0] needs a string "id"'),
        (b'{"records": [{"id": "1"}]}', 'records[0] needs a string "text"'),
        (b'{"records": [{"id": 1, "text": "a"}]}', "records[0].id must be a string"),
        (b'{"records": [{"id": "1", "text": "a", "x": 2}]}', "unknown field(s): x"),
        (b'{"records": [{"id": "1", "text": "a", "source": true}]}', "got boolean"),
    ],
)
def test_malformed_bodies_are_400_with_a_clear_message(raw: bytes, message: str) -> None:
    error = rejected(raw, RequestLimits(3, 10, 25, 1_000_000))
    assert error.status == 400
    assert error.code == "bad_request"
    assert message in error.message
    assert "limit" not in error.body()["error"]


@pytest.mark.parametrize(
    ("document", "limit", "value"),
    [
        ({"texts": ["a"] * 4}, "serve.max_texts", 3),
        ({"records": [{"id": str(i), "text": "a"} for i in range(4)]}, "serve.max_texts", 3),
        ({"texts": ["a", "b" * 11]}, "serve.max_text_chars", 10),
        ({"texts": ["a" * 10, "b" * 10, "c" * 6]}, "serve.max_request_chars", 25),
        ({"texts": ["a" * 600]}, "serve.max_body_bytes", 500),
    ],
)
def test_limits_are_413_naming_the_setting(document: Any, limit: str, value: int) -> None:
    error = rejected(body(document))
    assert error.status == 413
    assert error.body()["error"] == {
        "code": "limit_exceeded",
        "message": error.message,
        "limit": limit,
        "max": value,
    }


def test_limits_count_characters_not_bytes() -> None:
    # Ten CJK characters are 30 UTF-8 bytes, and within max_text_chars=10.
    assert parse_request(body({"texts": ["北" * 10]}), LIMITS) == [RequestItem("北" * 10)]


def test_response_echoes_ids_and_sources_and_rounds_scores() -> None:
    items = [RequestItem("王小明", id="r1", source="news"), RequestItem("无")]
    spans = [[EntitySpan("PER", "王小明", 0, 3, 0.987654)], []]
    assert response_body(items, spans, ModelInfo("m", "1")) == {
        "model": {"name": "m", "version": "1"},
        "results": [
            {
                "id": "r1",
                "source": "news",
                "entities": [
                    {"type": "PER", "text": "王小明", "start": 0, "end": 3, "score": 0.9877}
                ],
            },
            {"entities": []},
        ],
    }


def schema_validator(name: str, auth: bool = False) -> Draft202012Validator:
    document = openapi_document(LIMITS, auth=auth, version="0")
    # The document is the root resource, so "#/components/..." references resolve in it.
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["texts", "records", "id", "text", "source"]), children)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_request_schema_accepts_exactly_what_the_parser_accepts(document: Any) -> None:
    """Within max_request_chars (which JSON Schema cannot express; the document says it)."""
    raw = body(document)
    try:
        items = parse_request(raw, RequestLimits(3, 10, 10**6, 10**6))
    except ApiError:
        accepted = False
    else:
        accepted = True
        assert items
    assert schema_validator("EntitiesRequest").is_valid(document) == accepted


def test_the_document_is_openapi_31_with_auth_only_when_configured() -> None:
    document = openapi_document(LIMITS, auth=False, version="1.2")
    assert document["openapi"].startswith("3.1")
    assert "securitySchemes" not in document["components"]
    with_auth = openapi_document(LIMITS, auth=True, version="1.2")
    operation = with_auth["paths"]["/v1/entities"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert "401" in operation["responses"]
    error = ApiError(413, "limit_exceeded", "m", limit="serve.max_texts", limit_value=3)
    assert schema_validator("Error").is_valid(error.body())
