"""Name boundaries the tagger cannot be trusted with: mention markers, sentence punctuation,
laughter.

A person, place or organization name never starts or ends with ``@`` or ``#`` (a Weibo mention
or hashtag marker is not part of the name), sentence punctuation or white space, and a span that
still holds one of the marks after trimming has run across two names or out of a name into the
text ("北京、上海", "@A@B", "…交叉口吗？二二…"): it is dropped, since any cut of it would be a
guess. So is a span with a replacement character (U+FFFD: text lost in decoding) or with one
character other than a digit three times in a row (哈哈哈, 门门门: laughter and emphasis, which
social-media text is full of; a code such as TH000 stays). A bracket or quotation mark at either
end whose other half is not in the span is trimmed too (云帆科技（Yunfan Tech）: the ORG is
"Yunfan Tech"; 中国石油（集团）公司 keeps its pair); a span that still holds such a half inside
(人民日报》办, 梁（启超) ran across the mark and is dropped. An escaped line break or tab left in
text by a JSON or CSV export (the two characters ``\\n``; BosonNLP's documents are full of them)
counts as white space, and any other backslash as a mark. A person's name ends before a title or
the anonymizing 某 (温女士 -> 温, 高某 -> 高, 杨处长 -> 杨), as MSRA, Resume, CLUENER and the
clinical fixture label it (BosonNLP and Weibo include the title: in training and held-out
evaluation they are mapped to the majority's convention). NUM is exempt: "1,000" and "3:2" are
numbers.

Both the ASCII and the full-width forms count, so the rule reads raw corpus text (training's
label maps) as well as the runtime's NFKC-normalized text. Training's label maps apply the same
rule to every corpus (``training.datasets.LabelMap``), so Boson's "@handle" persons are "handle"
in training and evaluation alike; in the held-out evaluation gold it drops 2 of 3,069
CLUENER/Boson spans ("中弘。北京像素", "@孙见壮壮壮蚊子"). Measured on the dev sets with the
shipped model (``nerstream evaluate --report``): Weibo dev +1.2 F1, Boson held-out +0.2, CLUENER
held-out +0.1, Resume and MSRA unchanged; the bracket rule, with zh-cnn-crf 2.1.0: CLUENER and
Boson held-out +0.1 each, the rest unchanged; dropping spans with an unpaired half inside, with
2.1.1: Boson held-out +0.4, Resume and CLUENER +0.1, Weibo unchanged (cutting them at the mark
instead gave +0.3 in all; the drop removes 13 training and 1 held-out gold span).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from models.tags import Span

#: Characters that never begin, end or sit inside a PER/LOC/ORG name.
OUTSIDE_NAMES = frozenset("@#,。?!;:、＠＃，？！；：\n\t\r\ufffd\\")
#: Escaped white space (a backslash and n, r or t) trimmed from either end of a name as a unit.
ESCAPED_SPACE = frozenset({"\\n", "\\r", "\\t"})
#: A character (not a digit) this many times in a row is laughter or emphasis, not a name.
RUN = 3
#: Any character RUN times in a row (digits are told apart afterwards).
_REPEATS = re.compile(rf"(.)\1{{{RUN - 1}}}", re.DOTALL)
#: Brackets and quotation marks by their closing form: a name holds both or neither, so one that
#: begins or ends with a half of a pair it does not close (云帆科技（Yunfan Tech）) loses it.
_PAIRS = {
    ")": "(",
    "）": "（",
    "]": "[",
    "】": "【",
    "》": "《",
    "」": "「",
    "』": "『",
    "”": "“",
    "’": "‘",
}
_OPENING = {opening: closing for closing, opening in _PAIRS.items()}
#: Any character that _trim or the OUTSIDE_NAMES check looks at (``\\s`` is str.isspace's set).
_TRIMMED = re.compile(
    "[" + re.escape("".join(sorted(OUTSIDE_NAMES | set(_PAIRS) | set(_OPENING)))) + r"\s]"
)
#: Titles and the anonymizing 某 that follow a person's name but are not part of it (MSRA's
#: convention: 351 names before 先生, 450 before 同志, 53 before 某 in its training set, none
#: with them). Ambiguous one-character titles (总 of 总理, 哥, 姐) are left alone.
PERSON_TITLES = (
    "先生", "女士", "小姐", "太太", "夫人", "老师", "师傅", "同志", "处长", "局长", "书记",
    "主任", "院长", "经理", "教授", "医生", "护士", "某",
)  # fmt: skip
#: Types whose spans the rule leaves alone.
EXEMPT_TYPES = frozenset({"NUM"})


def name_span(text: str, span: Span) -> Span | None:
    """``span`` trimmed of OUTSIDE_NAMES, white space and unpaired brackets at both ends; None
    when nothing is left, one of OUTSIDE_NAMES or an unpaired bracket remains inside or a
    character runs RUN times."""
    if span.type in EXEMPT_TYPES:
        return span
    start, end = span.start, span.end
    # Most names hold none of the characters the trimming looks at: one search skips it.
    if _TRIMMED.search(text, start, end) is not None:
        start, end = _trim(text, start, end)
        if not OUTSIDE_NAMES.isdisjoint(text[start:end]) or _unpaired(text[start:end]):
            return None
    if span.type == "PER" and text.endswith(PERSON_TITLES, start, end):
        end = _before_titles(text, start, end)
    if start == end or _has_run(text[start:end]):
        return None
    return span if (start, end) == (span.start, span.end) else Span(start, end, span.type)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """text[start:end] less the OUTSIDE_NAMES, white space and unpaired brackets at its ends."""
    while True:
        first, last = start, end
        while start < end and text[start : start + 2] in ESCAPED_SPACE:
            start += 2
        while end - start >= 2 and text[end - 2 : end] in ESCAPED_SPACE:
            end -= 2
        while start < end and (text[start] in OUTSIDE_NAMES or text[start].isspace()):
            start += 1
        while end > start and (text[end - 1] in OUTSIDE_NAMES or text[end - 1].isspace()):
            end -= 1
        if start < end and text[end - 1] in _PAIRS and _PAIRS[text[end - 1]] not in text[start:end]:
            end -= 1
        if start < end and text[start] in _OPENING and _OPENING[text[start]] not in text[start:end]:
            start += 1
        if (start, end) == (first, last):
            return start, end


def _unpaired(name: str) -> bool:
    """Whether ``name`` holds half of a bracket or quotation-mark pair without the other."""
    return any(
        (char in _PAIRS and _PAIRS[char] not in name)
        or (char in _OPENING and _OPENING[char] not in name)
        for char in name
    )


def _before_titles(text: str, start: int, end: int) -> int:
    """The end of the name in text[start:end] once trailing PERSON_TITLES are cut (王某某 -> 王)."""
    while (
        title := next((t for t in PERSON_TITLES if text.endswith(t, start, end)), None)
    ) is not None:
        end -= len(title)
    return end


def _has_run(name: str) -> bool:
    # A digit run can never hide a non-digit one, so non-overlapping matches find every run.
    return any(not match[1].isdigit() for match in _REPEATS.finditer(name))


def names(text: str, spans: Iterable[Span]) -> list[Span]:
    """``name_span`` over spans, dropping those it drops."""
    return [named for span in spans if (named := name_span(text, span)) is not None]


def name_spans(text: str, scored: Iterable[tuple[Span, float]]) -> list[tuple[Span, float]]:
    """``name_span`` over (span, score) pairs, keeping each kept span's score."""
    kept = []
    for span, score in scored:
        named = name_span(text, span)
        if named is not None:
            kept.append((named, score))
    return kept
