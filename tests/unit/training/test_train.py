"""Training pieces: config handling, data preparation, the padding-exact encoders, the CRF loss."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import Tensor  # noqa: E402

from models.tags import Span, label_set  # noqa: E402
from tests.conftest import TinyModel, tiny_config  # noqa: E402
from training.config import TrainConfig, load_config  # noqa: E402
from training.corpora import Example, read_corpus  # noqa: E402
from training.data import normalized_example, split_long  # noqa: E402
from training.model import (  # noqa: E402
    ENCODERS,
    Crf,
    TaggerShape,
    build_tagger,
    gather_steps,
    reverse_index,
    window_rows,
)
from training.train import length_batches  # noqa: E402

pytestmark = pytest.mark.training


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "entity_types": ["PER"]}))
    config = load_config(
        path, ["hidden=8", "weak_num=false", "entity_types=PER,LOC", "dilations=1,3"]
    )
    assert (config.epochs, config.hidden, config.weak_num) == (3, 8, False)
    assert config.entity_types == ("PER", "LOC")
    assert config.dilations == (1, 3)
    bad_overrides = (["nope=1"], ["hidden=x"], ["weak_num=maybe"], ["epochs"], ["dilations=1,x"])
    for bad in (*bad_overrides, ["encoder=gru"], ["encoder=cnn", "dilations="]):
        with pytest.raises(ValueError):
            config.with_overrides(bad)
    with pytest.raises(ValueError, match="unknown config key"):
        TrainConfig.from_mapping({"hiden": 3})


@pytest.mark.parametrize("name", ["zh-cnn-crf", "zh-cnn-crf-stage2", "msra-bilstm-crf", "tiny"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(Path(f"training/configs/{name}.json"))
    assert config.encoder in ENCODERS
    assert set(config.entity_types) <= {"PER", "LOC", "ORG", "NUM"}


def test_split_long_never_cuts_an_entity() -> None:
    example = Example("abcdefghij", (Span(2, 4, "PER"), Span(4, 7, "LOC")))
    pieces = split_long(example, 5)
    assert "".join(piece.text for piece in pieces) == example.text
    assert pieces[0] == Example("abcd", (Span(2, 4, "PER"),))
    assert pieces[1] == Example("efghij"[:5], (Span(0, 3, "LOC"),))
    assert all(len(piece.text) <= 5 for piece in pieces)


def test_normalized_example_moves_spans() -> None:
    example = Example("５㎏张三", (Span(0, 2, "NUM"), Span(2, 4, "PER")))
    assert normalized_example(example) == Example("5kg张三", (Span(0, 3, "NUM"), Span(3, 5, "PER")))


def test_length_batches_cover_every_example_once() -> None:
    import random

    batches = list(length_batches([5, 1, 9, 3, 3, 7, 2], 3, random.Random(0)))
    assert sorted(i for batch in batches for i in batch) == list(range(7))
    assert all(len(batch) <= 3 for batch in batches)


def test_reverse_index_reverses_within_length_only() -> None:
    index = reverse_index(torch.tensor([3, 0, 5]), 5)
    assert index.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    values = torch.arange(15).reshape(3, 5)
    assert gather_steps(gather_steps(values, index), index).tolist() == values.tolist()


def test_window_rows_stay_inside_each_sentence() -> None:
    rows = window_rows(torch.tensor([3, 1]), 3, 2).reshape(-1, 3).tolist()
    outside = 6  # B * T: the all-zero row
    assert rows == [
        [outside, 0, 2],  # row 0, position 0: its neighbour at +2 is position 2
        [outside, 1, outside],
        [0, 2, outside],
        [outside, 3, outside],  # row 1 has one character
        [outside, outside, outside],  # padding: it may read real positions, none reads it
        [3, outside, outside],
        [outside, outside, outside],  # the zero row itself
    ]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_tagger_is_padding_exact(encoder: str) -> None:
    torch.manual_seed(0)
    labels = label_set(("PER",), "BMES")
    shape = TaggerShape(20, 30, len(labels), 6, 4, 5, 0.0, encoder, (1, 2))
    model = build_tagger(shape, labels, "BMES").eval()
    lengths = torch.tensor([6, 2, 4])
    chars = torch.randint(2, 20, (3, 6)) * (torch.arange(6) < lengths[:, None])
    bigrams = torch.randint(2, 30, (3, 6)) * (torch.arange(6) < lengths[:, None])
    lexicon = torch.randint(0, 4096, (3, 6)) * (torch.arange(6) < lengths[:, None])
    with torch.no_grad():
        together = model(chars, bigrams, lexicon, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone = model(
                chars[row : row + 1, :length],
                bigrams[row : row + 1, :length],
                lexicon[row : row + 1, :length],
                lengths[row : row + 1],
            )
            torch.testing.assert_close(together[row, :length], alone[0], atol=1e-5, rtol=1e-5)


def _brute_force_nll(crf: Crf, emissions: Tensor, allowed: Tensor, lengths: Tensor) -> Tensor:
    """-log P(allowed paths) by enumerating every path of every row."""
    transitions, start, end = crf.scores()
    size = emissions.shape[2]

    def score(path: tuple[int, ...], row: int) -> Tensor:
        total: Tensor = start[path[0]] + end[path[-1]] + emissions[row, 0, path[0]]
        for t in range(1, len(path)):
            total = total + transitions[path[t - 1], path[t]] + emissions[row, t, path[t]]
        return total

    expected = []
    for row, length in enumerate(lengths.tolist()):
        paths = list(itertools.product(range(size), repeat=length))
        log_z = torch.logsumexp(torch.stack([score(p, row) for p in paths]), dim=0)
        kept = [p for p in paths if all(allowed[row, t, tag] for t, tag in enumerate(p))]
        log_allowed = torch.logsumexp(torch.stack([score(p, row) for p in kept]), dim=0)
        expected.append(log_z - log_allowed)
    mean: Tensor = torch.stack(expected).mean()
    return mean


def _random_crf(labels: tuple[str, ...]) -> Crf:
    crf = Crf(labels, "BIO")
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


def test_crf_loss_equals_brute_force() -> None:
    torch.manual_seed(1)
    crf = _random_crf(label_set(("PER",), "BIO"))  # O, B-PER, I-PER
    emissions: Tensor = torch.randn(2, 4, 3)
    lengths = torch.tensor([4, 3])
    tags = torch.tensor([[1, 2, 0, 1], [0, 1, 2, 0]])
    allowed = torch.nn.functional.one_hot(tags, 3).bool()
    loss = crf.negative_log_likelihood(emissions, allowed, lengths)
    torch.testing.assert_close(loss, _brute_force_nll(crf, emissions, allowed, lengths))


def test_partial_label_loss_sums_over_the_allowed_paths() -> None:
    torch.manual_seed(2)
    labels = label_set(("PER", "LOC"), "BIO")  # O, B-PER, I-PER, B-LOC, I-LOC
    crf = _random_crf(labels)
    emissions: Tensor = torch.randn(2, 4, 5)
    lengths = torch.tensor([4, 3])
    allowed = torch.zeros(2, 4, 5, dtype=torch.bool)
    allowed[0, :, 0] = True  # row 0: PER unknown at positions 1-3, position 0 is O
    allowed[0, 1:, 1:3] = True
    allowed[1, 0, 3] = True  # row 1: a gold LOC at 0-1, then anything but LOC
    allowed[1, 1, 4] = True
    allowed[1, 2:, :3] = True
    loss = crf.negative_log_likelihood(emissions, allowed, lengths)
    torch.testing.assert_close(loss, _brute_force_nll(crf, emissions, allowed, lengths))
    assert float(loss.detach()) > 0


def test_name_lists_are_back_to_back_person_names() -> None:
    import random

    from training.augment import name_lists

    source = [
        Example("张三和李四去北京", (Span(0, 2, "PER"), Span(3, 5, "PER"), Span(6, 8, "LOC")))
    ]
    lists = name_lists(source, 20, random.Random(0))
    assert len(lists) == 20
    for example in lists:
        assert len(example.spans) >= 2
        assert {example.text[s.start : s.end] for s in example.spans} <= {"张三", "李四"}
        assert all(s.type == "PER" for s in example.spans)
        assert all(a.end <= b.start for a, b in itertools.pairwise(example.spans))
    assert name_lists([Example("北京", (Span(0, 2, "LOC"),))], 5, random.Random(0)) == []


def test_grouped_numbers_copies_sentences_with_thousands_separators() -> None:
    from training.augment import grouped_numbers

    text = "收入21350元，增加1630多元，共3亿"
    example = Example(text, (Span(2, 7, "NUM"), Span(11, 16, "NUM"), Span(19, 21, "NUM")))
    (copy,) = grouped_numbers([example, Example("三人", (Span(0, 1, "NUM"),))])
    assert copy.text == "收入21,350元，增加1,630多元，共3亿"
    assert [copy.text[s.start : s.end] for s in copy.spans] == ["21,350", "1,630多", "3亿"]


def test_distillation_loss_is_cross_entropy_per_sentence() -> None:
    from training.train import distillation_loss

    emissions = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # second row: padding
    expected = -torch.log_softmax(emissions[0, 0], dim=0)[0]
    torch.testing.assert_close(distillation_loss(emissions, teacher), expected)


def test_distilling_from_a_teacher(tiny_model: TinyModel, tmp_path: Path) -> None:
    from training.distill import teacher_marginals
    from training.train import train

    texts = ["北京大学的张三", "在这里"]
    labels = label_set(("PER", "LOC", "ORG", "NUM"), "BMES")
    teacher = tiny_model.model_dir
    targets = teacher_marginals([teacher], texts, labels, threads=1, progress=False)
    assert [target.shape for target in targets] == [(7, 17), (3, 17)]
    for target in targets:
        np.testing.assert_allclose(target.astype(np.float32).sum(axis=1), 1.0, atol=1e-2)
    # Several teachers are averaged: two copies of one teacher teach what it teaches alone.
    twice = teacher_marginals([teacher, teacher], texts, labels, threads=1, progress=False)
    for alone, averaged in zip(targets, twice, strict=True):
        np.testing.assert_allclose(alone.astype(np.float32), averaged.astype(np.float32), atol=1e-3)
    with pytest.raises(ValueError, match="labels"):
        teacher_marginals([teacher], texts, label_set(("PER",), "BIO"), threads=1)
    with pytest.raises(ValueError, match="at least one teacher"):
        teacher_marginals([], texts, labels, threads=1)

    config = tiny_config(max_sentences=200, epochs=1, distill_from=(str(teacher),))
    result = train(config, tmp_path / "student", progress=False)
    assert result.checkpoint.is_file()


def test_teacher_labels_become_training_sentences(tiny_model: TinyModel, tmp_path: Path) -> None:
    from models.runtime import NerModel
    from training.data import prepare_data
    from training.distill import teacher_examples

    texts = ["北京大学的张三说了3句话", "在这里"]
    examples = teacher_examples(tiny_model.model_dir, texts, threads=1, progress=False)
    predicted = NerModel.load(tiny_model.model_dir, provider="cpu", precision="fp32").predict(texts)
    assert [example.text for example in examples] == texts
    assert [[(s.start, s.end, s.type) for s in example.spans] for example in examples] == [
        [(e.start, e.end, e.type) for e in entities] for entities in predicted
    ]

    test_sentence = read_corpus("msra-test")[0].text  # overlaps the MSRA test file: left out
    unseen = "这是一段从来没有在任何语料中出现过的测试文字，用来检查自学习的文本"
    source = tmp_path / "texts.txt"
    source.write_text(f"{test_sentence}\n{unseen}\n", encoding="utf-8")
    config = tiny_config(
        max_sentences=50,
        self_training_texts=str(source),
        self_training_teacher=str(tiny_model.model_dir),
    )
    data = prepare_data(config)
    assert data.description["self_training_sentences"] == 1
    # Normalized like all training text ("，" -> ",").
    assert unseen.replace("，", ",") in [example.text for example in data.train]
    assert not any(test_sentence[:30] in example.text for example in data.train)
    with pytest.raises(ValueError, match="go together"):
        tiny_config(self_training_texts=str(source)).validate()


def test_mention_swaps_replace_entities_by_others_of_their_type() -> None:
    import random

    from training.augment import mention_swaps

    source = [
        Example("张三去北京", (Span(0, 2, "PER"), Span(3, 5, "LOC"))),
        Example("李四到上海了", (Span(0, 2, "PER"), Span(3, 5, "LOC"))),
        Example("共3人", (Span(1, 2, "NUM"),)),  # nothing to swap: no copy
    ]
    copies = mention_swaps(source, random.Random(0))
    assert len(copies) == 2
    for copy, original in zip(copies, source[:2], strict=True):
        assert [span.type for span in copy.spans] == [span.type for span in original.spans]
        persons = [copy.text[s.start : s.end] for s in copy.spans if s.type == "PER"]
        places = [copy.text[s.start : s.end] for s in copy.spans if s.type == "LOC"]
        assert set(persons) <= {"张三", "李四"} and set(places) <= {"北京", "上海"}
    assert copies[1].text.endswith("了")


def test_hospital_departments_extend_the_hospital_organization() -> None:
    import random

    from training.augment import hospital_departments

    source = [
        Example("他在协和医院工作", (Span(0, 1, "PER"), Span(2, 6, "ORG"))),
        Example("新华社报道", (Span(0, 3, "ORG"),)),  # no hospital: no copy
    ]
    copies = hospital_departments(source, ["儿科", "心内科"], 3, random.Random(0))
    assert len(copies) == 3
    for copy in copies:
        person, hospital = (copy.text[s.start : s.end] for s in copy.spans)
        assert person == "他" and hospital in ("协和医院儿科", "协和医院心内科")
        assert copy.text == f"他在{hospital}工作"
    assert hospital_departments(source, [], 3, random.Random(0)) == []


def test_every_other_department_copy_names_a_doctor_after_it() -> None:
    import random

    from training.augment import hospital_departments

    source = [Example("他在协和医院工作", (Span(0, 1, "PER"), Span(2, 6, "ORG")))]
    copies = hospital_departments(source, ["儿科"], 4, random.Random(0), doctors=["王建国"])
    assert [copy.text for copy in copies] == [
        "他在协和医院儿科工作",
        "他在协和医院儿科王建国工作",
    ] * 2
    named = copies[1]
    assert [(named.text[s.start : s.end], s.type) for s in named.spans] == [
        ("他", "PER"),
        ("协和医院儿科", "ORG"),
        ("王建国", "PER"),
    ]


def test_training_on_several_corpora_with_partial_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from training.train import train

    samples = Path(__file__).resolve().parents[2] / "data" / "corpora"
    root = tmp_path / "corpora"
    for sample, target in [
        ("weibo.conll", "weibo/weiboNER_2nd_conll.train"),
        ("weibo.conll", "weibo/weiboNER_2nd_conll.dev"),
        ("cmeee.txt", "medical/cmeee_v1/train_data.txt"),
    ]:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / sample, root / target)
    monkeypatch.setenv("NERSTREAM_CORPORA_DIR", str(root))
    config = tiny_config(
        max_sentences=100,
        train_data=("msra-train", "weibo-train*2", "cmeee-train"),
        dev_data=("weibo-dev",),
        augment_departments=1,
        stop_after_epoch=1,
    )
    result = train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1]  # stopped after epoch 1 of 3
    assert set(log[0]["dev_f1_by_set"]) == {"dev", "weibo-dev"}
    checkpoint = torch.load(result.checkpoint, weights_only=True)
    data = checkpoint["data"]
    assert data["train_sentences_by_source"]["cmeee-train"] > 0
    assert data["partially_labelled_sentences"] > 0
