"""JSON log lines carry the position fields a log call passes, and nothing else of the record."""

from __future__ import annotations

import json
import logging

from streams.worker.logs import JsonFormatter


def test_json_lines_carry_position_fields() -> None:
    record = logging.LogRecord(
        "streams.worker.agents", logging.WARNING, __file__, 1, "dead-lettered %s", ("x",), None
    )
    record.topic, record.partition, record.offset, record.error_code = "news", 2, 41, "EMPTY_TEXT"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "dead-lettered x"
    assert line["level"] == "WARNING" and line["logger"] == "streams.worker.agents"
    assert (line["topic"], line["partition"], line["offset"]) == ("news", 2, 41)
    assert line["error_code"] == "EMPTY_TEXT"
    assert line["time"].endswith("+00:00")


def test_fields_a_call_does_not_set_are_left_out() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert set(json.loads(JsonFormatter().format(record))) == {"time", "level", "logger", "message"}
