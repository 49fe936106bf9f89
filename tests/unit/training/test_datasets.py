"""The shared corpora's source formats, their mapping to PER/LOC/ORG, held-out parts, partial
labels and document cutting, on small made-up samples in tests/data/corpora/ (written in each
source's exact format). The real corpora are read only by the `shared_corpora` tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.tags import Span, label_set
from training.corpora import (
    CorpusError,
    Example,
    read_boson,
    read_cluener,
    read_cmeee,
    read_tagged,
    read_weibo,
)
from training.data import parse_weighted, sentences, split_long
from training.datasets import HELDOUT_FRACTION, LABEL_MAPS, SHARED_SETS, corpora_dir, read_shared
from training.partial import allowed_tags

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "corpora"


def mentions(example: Example) -> list[tuple[str, str]]:
    return [(example.text[s.start : s.end], s.type) for s in example.spans]


def test_weibo_tokens_lose_their_word_positions_and_keep_nominal_labels() -> None:
    examples = read_weibo(SAMPLES / "weibo.conll")
    assert len(examples) == 6
    first = examples[0]
    assert first.text.startswith("今天和老妈去杭州西湖边")
    assert ("老妈", "PER.NOM") in mentions(first)
    assert ("杭州", "GPE.NAM") in mentions(first) and ("西湖", "LOC.NAM") in mentions(first)
    # A token of two U+FFFD (a lost emoji) is one character, so text and tags stay aligned.
    assert any(
        "\ufffd" in example.text and "\ufffd\ufffd" not in example.text for example in examples
    )
    assert not any(char.isdigit() and char in "0123456789" for char in first.text[:11])


def test_weibo_mapping_keeps_named_mentions_only() -> None:
    mapped = [LABEL_MAPS["weibo"].apply(example) for example in read_weibo(SAMPLES / "weibo.conll")]
    found = [pair for example in mapped for pair in mentions(example)]
    assert ("杭州", "LOC") in found and ("西湖", "LOC") in found
    assert ("老妈", "PER") not in found  # a nominal mention is not a name
    assert {kind for _, kind in found} <= {"PER", "LOC", "ORG"}
    assert all(not example.unknown and not example.blocked for example in mapped)


def test_cluener_offsets_are_end_inclusive_and_repeated_mentions_all_count() -> None:
    examples = read_cluener(SAMPLES / "cluener.json")
    assert ("浙江省卫生健康委员会", "government") in mentions(examples[0])
    assert mentions(examples[2]).count(("苏婉清", "name")) == 2
    mapped = LABEL_MAPS["cluener"].apply(examples[1])
    assert mentions(mapped) == [("赵一鸣", "PER")]  # game, movie and position are not ours


def test_boson_and_cmeee_offsets(tmp_path: Path) -> None:
    boson = read_boson(SAMPLES / "boson.txt")
    assert all(example.text.endswith("\n") for example in boson)
    assert all(example.text[s.start : s.end] for example in boson for s in example.spans)
    cmeee = read_cmeee(SAMPLES / "cmeee.txt")
    assert len(cmeee) == 6
    # Nested and overlapping spans are kept as they are.
    assert mentions(cmeee[0]) == [
        ("反复咳嗽", "sym"),
        ("发热", "sym"),
        ("双肺", "bod"),
        ("双肺可闻及湿啰音", "sym"),
    ]
    # The empty source span (end = start - 1) is skipped.
    assert all(s.start < s.end for example in cmeee for s in example.spans)
    mapped = LABEL_MAPS["cmeee"].apply(cmeee[3])
    assert mapped.spans == () and mapped.unknown == ("PER", "LOC", "ORG")
    # A department blocks nothing; equipment and procedures do.
    assert [mapped.text[s.start : s.end] for s in mapped.blocked] == ["呼吸机", "辅助通气"]

    bad = tmp_path / "bad.txt"
    bad.write_text("文本|||0    9    dis|||\r\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.txt:1"):
        read_cmeee(bad)
    mismatch = tmp_path / "bad.json"
    mismatch.write_text(
        '{"text": "张三", "entity_list": [{"entity_index": {"begin": 0, "end": 2}, '
        '"entity_type": "person_name", "entity": "李四"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match="does not match"):
        read_boson(mismatch)


def test_resume_maps_name_org_loc_and_drops_titles_and_nationality() -> None:
    examples = read_tagged(SAMPLES / "resume.bmes", "BMES")
    mapped = [LABEL_MAPS["resume"].apply(example) for example in examples]
    kinds = {kind for example in mapped for _, kind in mentions(example)}
    assert kinds <= {"PER", "LOC", "ORG"} and "PER" in kinds and "ORG" in kinds
    source_kinds = {s.type for example in examples for s in example.spans}
    assert {"TITLE", "EDU", "CONT", "RACE"} <= source_kinds


def test_named_sets_read_from_the_corpora_dir_with_a_stable_heldout_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cluener").mkdir()
    lines = []
    for i in range(60):
        text = f"第{i}号文件说张{i}在北京"
        start = text.index("张")
        label = {"name": {f"张{i}": [[start, start + len(str(i))]]}}
        lines.append(json.dumps({"text": text, "label": label}, ensure_ascii=False))
    (tmp_path / "cluener" / "train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("NERSTREAM_CORPORA_DIR", str(tmp_path))
    assert corpora_dir() == tmp_path
    train = read_shared("cluener-train")
    heldout = read_shared("cluener-heldout")
    assert len(train) + len(heldout) == 60
    assert not {e.text for e in train} & {e.text for e in heldout}
    assert read_shared("cluener-heldout") == heldout
    assert 0 < len(heldout) < 60 * HELDOUT_FRACTION * 3
    assert all(mentions(e)[0][1] == "PER" for e in train)
    with pytest.raises(CorpusError, match="NERSTREAM_CORPORA_DIR"):
        read_shared("weibo-dev")
    with pytest.raises(CorpusError, match="unknown data set"):
        read_shared("weibo-test")


def test_documents_are_cut_into_sentences_never_inside_an_entity() -> None:
    text = "张三说：好。李四去了北京！\\n王五在“上海。浦东”工作\n"
    spans = (Span(0, 2, "PER"), Span(6, 8, "PER"), Span(10, 12, "LOC"), Span(19, 24, "LOC"))
    pieces = sentences(Example(text, spans))
    assert [piece.text for piece in pieces] == [
        "张三说：好。",
        "李四去了北京！",
        "王五在“上海。浦东”工作",
    ]
    assert [mentions(piece) for piece in pieces] == [
        [("张三", "PER")],
        [("李四", "PER"), ("北京", "LOC")],
        [("上海。浦东", "LOC")],
    ]


def test_blocked_regions_follow_the_text_when_it_is_cut() -> None:
    example = Example("患者口服阿莫西林胶囊", (), ("PER",), (Span(4, 10, "dru"),))
    first, second = split_long(example, 6)
    assert first.blocked == (Span(4, 6, "dru"),) and second.blocked == (Span(0, 4, "dru"),)
    assert first.unknown == second.unknown == ("PER",)


def test_allowed_tags_for_full_and_partial_labels() -> None:
    labels = label_set(("PER", "NUM"), "BMES")  # O, B/M/E/S-PER, B/M/E/S-NUM
    full = allowed_tags(Example("张三来", (Span(0, 2, "PER"),)), labels, "BMES")
    assert full.sum(axis=1).tolist() == [1, 1, 1]
    assert [labels[i] for i in full.argmax(axis=1)] == ["B-PER", "E-PER", "O"]

    # PER unknown, a NUM gold span and a drug region: PER may be anywhere else.
    partial = Example("王医生开20mg华法林", (Span(4, 6, "NUM"),), ("PER",), (Span(8, 11, "dru"),))
    allowed = allowed_tags(partial, labels, "BMES")
    per = [labels.index(f"{p}-PER") for p in "BMES"]
    assert allowed[0, per].all() and allowed[0, 0]
    assert allowed[4].sum() == 1 and labels[allowed[4].argmax()] == "B-NUM"
    assert not allowed[8:11][:, per].any() and allowed[8:11, 0].all()
    assert not allowed[:, [labels.index(f"{p}-NUM") for p in "BMES"]][[0, 1, 8], :].any()


def test_weighted_entries() -> None:
    assert parse_weighted("weibo-train*3") == ("weibo-train", 3)
    assert parse_weighted("data/x.txt") == ("data/x.txt", 1)
    for bad in ("weibo-train*0", "weibo-train*x"):
        with pytest.raises(ValueError, match="NAME\\*N"):
            parse_weighted(bad)


@pytest.mark.shared_corpora
@pytest.mark.parametrize(
    ("name", "units", "entities"),
    [
        # The README counts 542 PER; the name boundaries drop 周康康康康, 谢欣欣…梅 and a
        # person labelled 小姐 (a title alone).
        ("weibo-train", 1278, {"PER": 539, "LOC": 251, "ORG": 170}),
        ("weibo-dev", 256, {"PER": 87, "LOC": 32, "ORG": 47}),
        ("resume-dev", 461, {"PER": 110, "LOC": 2, "ORG": 522}),
    ],
)
def test_the_shared_corpora_read_as_their_readme_counts(
    name: str, units: int, entities: dict[str, int]
) -> None:
    if not (corpora_dir() / SHARED_SETS[name].file).is_file():
        pytest.skip(f"the shared corpora are not at {corpora_dir()}")
    examples = read_shared(name)
    assert len(examples) == units
    counts = {kind: sum(s.type == kind for e in examples for s in e.spans) for kind in entities}
    assert counts == entities


@pytest.mark.shared_corpora
def test_every_shared_set_reads_and_heldout_parts_are_disjoint() -> None:
    if not corpora_dir().is_dir():
        pytest.skip(f"the shared corpora are not at {corpora_dir()}")
    for corpus in ("cluener", "boson", "cmeee"):
        train = {e.text for e in read_shared(f"{corpus}-train")}
        heldout = {e.text for e in read_shared(f"{corpus}-heldout")}
        assert train and heldout and not train & heldout


def test_resume_native_places_lose_their_trailing_person_character() -> None:
    example = Example("张伟，浙江杭州人，硕士", (Span(0, 2, "NAME"), Span(3, 8, "LOC")))
    mapped = LABEL_MAPS["resume"].apply(example)
    assert mentions(mapped) == [("张伟", "PER"), ("浙江杭州", "LOC")]


@pytest.mark.parametrize(
    ("place", "units"),
    [
        ("广东省深圳市", ["广东省", "深圳市"]),
        ("内蒙古自治区赤峰市", ["内蒙古自治区", "赤峰市"]),
        ("山西省代县", ["山西省", "代县"]),
        ("利津县楠杆镇李岗村", ["利津县", "楠杆镇", "李岗村"]),
        ("上海市黄浦区南京东路3段248号", ["上海市", "黄浦区", "南京东路3段248号"]),
        # Not a chain of two or more units: kept whole.
        ("北京市", ["北京市"]),
        ("香港特别行政区", ["香港特别行政区"]),
        ("浦东新区世纪公园", ["浦东新区世纪公园"]),
        # Areas that end like a unit but are not one, and a one-character rest.
        ("杭州市西湖景区", ["杭州市西湖景区"]),
        ("湖北省海滨城市", ["湖北省海滨城市"]),
        ("邯郸市鸡泽县城", ["邯郸市鸡泽县城"]),
    ],
)
def test_places_that_start_with_administrative_units_are_cut_as_in_msra(
    place: str, units: list[str]
) -> None:
    text = f"他住在{place}。"
    example = Example(text, (Span(3, 3 + len(place), "address"), Span(0, 1, "name")))
    mapped = mentions(LABEL_MAPS["cluener"].apply(example))
    assert mapped == [(unit, "LOC") for unit in units] + [("他", "PER")]


def test_only_places_are_cut_into_administrative_units() -> None:
    text = "广东省深圳市人民政府"
    example = Example(text, (Span(0, len(text), "government"),))
    assert mentions(LABEL_MAPS["cluener"].apply(example)) == [(text, "ORG")]


def test_resume_native_places_are_cut_after_losing_their_person_character() -> None:
    example = Example("浙江省绍兴市人，硕士", (Span(0, 7, "LOC"),))
    assert mentions(LABEL_MAPS["resume"].apply(example)) == [("浙江省", "LOC"), ("绍兴市", "LOC")]


def test_mapped_spans_obey_the_served_name_boundaries() -> None:
    text = "@颇渴 转发：北京，上海"
    example = Example(text, (Span(0, 3, "person_name"), Span(7, 12, "location")))
    assert mentions(LABEL_MAPS["boson"].apply(example)) == [("颇渴", "PER")]


def test_an_unknown_source_names_the_data_sets_there_are() -> None:
    from training.data import read_data

    with pytest.raises(CorpusError, match=r"nor a data set name .*msra-test.*weibo-dev"):
        read_data("weibo-test")
