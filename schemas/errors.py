"""The one exception for records that can never be processed, and its stable error codes."""

from __future__ import annotations

from enum import StrEnum

from errors import PermanentError


class ErrorCode(StrEnum):
    """Stable reasons written to DeadLetter.error_code; documented in dead_letter.avsc."""

    EMPTY_VALUE = "EMPTY_VALUE"
    UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
    DECODE_AVRO = "DECODE_AVRO"
    DECODE_JSON = "DECODE_JSON"
    INVALID_UTF8 = "INVALID_UTF8"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    INVALID_FIELD = "INVALID_FIELD"
    MISSING_TEXT = "MISSING_TEXT"
    EMPTY_TEXT = "EMPTY_TEXT"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    #: Registry mode: the schema id of a framed value is not in the schema registry.
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    #: Registry mode: the writer schema of a framed value cannot be read as the current Record.
    INCOMPATIBLE_SCHEMA = "INCOMPATIBLE_SCHEMA"
    #: The model failed on this record even when it was retried alone (set by the worker).
    INFERENCE_FAILED = "INFERENCE_FAILED"
    #: The record's entity event would exceed the largest message Kafka accepts (set by the worker).
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"


class DecodeError(PermanentError, ValueError):
    """A message that is permanently unusable: dead-letter it, never retry it.

    The message never contains record text (it may be medical data), only what was wrong.
    """

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
