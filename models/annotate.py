"""``nerstream annotate``: tag text lines or JSON lines offline, no Kafka.

Input lines are plain text, or JSON objects with "text" and an optional "id"; output is one JSON
object per input line: {"id", "text", "entities": [{"type", "start", "end", "text", "score"}]}.
A line without its own id gets "SOURCE:LINE" (SOURCE is "-" for stdin).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from errors import PermanentError
from models.runtime import NerModel

#: Lines handed to the model per predict call.
CHUNK = 256


class InputError(PermanentError, ValueError):
    """An input line cannot be read; the message names its source and line."""


@dataclass(frozen=True)
class Record:
    id: Any
    text: str


def parse_line(line: str, source: str, number: int) -> Record:
    """A JSON object line (first non-blank char "{") or a plain text line."""
    stripped = line.rstrip("\r\n")
    if not stripped.lstrip().startswith("{"):
        return Record(f"{source}:{number}", stripped)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}:{number}: not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise InputError(f'{source}:{number}: a JSON line needs a string "text"')
    return Record(value.get("id", f"{source}:{number}"), value["text"])


def read_lines(sources: Iterable[tuple[str, IO[str]]]) -> Iterator[Record]:
    """The records of every line of each ``(name, stream)`` source, in order."""
    for source, stream in sources:
        number = 0
        try:
            for number, line in enumerate(stream, 1):
                yield parse_line(line, source, number)
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}:{number + 1}: not UTF-8 text ({exc.reason})") from exc


def annotate(model: NerModel, records: Iterable[Record], output: IO[str]) -> int:
    """Write one JSON line per record; returns how many were written."""
    written = 0
    chunk: list[Record] = []

    def flush() -> None:
        nonlocal written
        for record, entities in zip(chunk, model.predict([r.text for r in chunk]), strict=True):
            line = {
                "id": record.id,
                "text": record.text,
                "entities": [entity.as_dict() for entity in entities],
            }
            output.write(json.dumps(line, ensure_ascii=False) + "\n")
        written += len(chunk)
        chunk.clear()

    for record in records:
        chunk.append(record)
        if len(chunk) == CHUNK:
            flush()
    flush()
    return written
