"""models.runtime: the exported tiny model reloads, agrees with torch, batches exactly, falls back
to CPU cleanly; the batching and provider policies on their own."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.bucketing import length_buckets
from models.features import Featurizer
from models.manifest import FLOAT_MODEL, FP16_MODEL, INT8_MODEL, ModelError
from models.runtime import (
    CPU_PROVIDER,
    GPU_PROVIDERS,
    Entity,
    NerModel,
    _model_file,
    drop_overlaps,
    provider_chain,
)
from models.tags import viterbi_decode
from tests.conftest import TinyModel

TEXTS = [
    "中共中央总书记、国家主席江泽民今天在北京会见了美国总统克林顿。",
    "",
    "１９９７年，全国有３００多万人参加了这次活动。",
    "新华社北京十二月三十一日电",
    "在这里",
]


def test_length_buckets_cap_padded_size_and_keep_every_index() -> None:
    lengths = [5, 100, 3, 50, 50, 0, 7, 120]
    batches = length_buckets(lengths, bucket_chars=110, bucket_texts=2)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 2
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 110
    assert batches[0] == [7]  # longest first; alone as it exceeds bucket_chars
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat, reverse=True)
    with pytest.raises(ValueError):
        length_buckets(lengths, 0, 1)


def test_spans_that_share_an_expanded_character_do_not_overlap() -> None:
    # "…" normalizes to "...": two spans inside it both map back to original [3, 4).
    first = Entity("LOC", 3, 4, "…", 0.6)
    second = Entity("LOC", 3, 4, "…", 0.7)
    later = Entity("PER", 4, 6, "张三", 0.9)
    assert drop_overlaps([first, second, later]) == [second, later]
    assert drop_overlaps([second, first]) == [second]
    assert drop_overlaps([]) == []


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ("auto", [*GPU_PROVIDERS.values(), CPU_PROVIDER], [*GPU_PROVIDERS.values(), CPU_PROVIDER]),
        ("auto", ["CUDAExecutionProvider", CPU_PROVIDER], ["CUDAExecutionProvider", CPU_PROVIDER]),
        ("auto", [CPU_PROVIDER], [CPU_PROVIDER]),
        ("cuda", [*GPU_PROVIDERS.values(), CPU_PROVIDER], ["CUDAExecutionProvider", CPU_PROVIDER]),
        ("tensorrt", [CPU_PROVIDER], [CPU_PROVIDER]),
        ("cpu", [*GPU_PROVIDERS.values(), CPU_PROVIDER], [CPU_PROVIDER]),
    ],
)
def test_provider_chain(requested: str, available: list[str], expected: list[str]) -> None:
    assert provider_chain(requested, available) == expected


@pytest.mark.parametrize(
    ("precision", "on_gpu", "has_fp16", "expected"),
    [
        ("auto", False, True, INT8_MODEL),
        ("auto", True, True, FP16_MODEL),
        ("auto", True, False, FLOAT_MODEL),
        ("fp32", False, True, FLOAT_MODEL),
        ("int8", True, True, INT8_MODEL),
        ("fp16", False, True, FP16_MODEL),
    ],
)
def test_model_file_for_precision(
    tmp_path: Path, precision: str, on_gpu: bool, has_fp16: bool, expected: str
) -> None:
    for name in (FLOAT_MODEL, INT8_MODEL, *([FP16_MODEL] if has_fp16 else [])):
        (tmp_path / name).write_bytes(b"")
    assert _model_file(tmp_path, precision, on_gpu) == expected


def test_model_file_refuses_a_missing_or_unknown_precision(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as raised:
        _model_file(tmp_path, "fp16", on_gpu=True)
    assert raised.value.code == ModelError.MISSING_FILE
    with pytest.raises(ValueError, match="precision"):
        _model_file(tmp_path, "fp8", on_gpu=False)


def test_provider_chain_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="provider must be one of"):
        provider_chain("gpu", [CPU_PROVIDER])


@pytest.mark.training
@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_bilstm_model"])
def test_onnx_emissions_and_tags_equal_torch(fixture: str, request: pytest.FixtureRequest) -> None:
    import torch

    from training.checkpoint import load_checkpoint

    tiny_model: TinyModel = request.getfixturevalue(fixture)
    model, _ = load_checkpoint(tiny_model.checkpoint)
    featurizer = Featurizer.load(tiny_model.model_dir, 8)
    batch = featurizer.encode(TEXTS)
    with torch.no_grad():
        expected = model(*(torch.from_numpy(v) for v in batch.as_inputs().values())).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(tiny_model.model_dir / FLOAT_MODEL), options, providers=[CPU_PROVIDER]
    )
    (actual,) = session.run(None, batch.as_inputs())
    mask = np.arange(batch.chars.shape[1])[None, :] < batch.lengths[:, None]
    np.testing.assert_allclose(actual[mask], expected[mask], atol=1e-4)
    crf = model.crf.numpy_scores()
    torch_tags, _ = viterbi_decode(expected, batch.lengths, *crf)
    onnx_tags, _ = viterbi_decode(actual, batch.lengths, *crf)
    assert (torch_tags == onnx_tags).all()


@pytest.mark.training
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_batched_equals_unbatched(tiny_model: TinyModel, precision: str) -> None:
    model = NerModel.load(tiny_model.model_dir, provider="cpu", precision=precision)
    long_text = "".join(TEXTS) * 3  # several windows of max_length 40
    texts = [*TEXTS, long_text]
    together = model.predict(texts)
    alone = [model.predict([text])[0] for text in texts]
    assert model.predict([]) == []
    assert together[1] == []
    assert [[(e.type, e.start, e.end, e.text) for e in found] for found in together] == [
        [(e.type, e.start, e.end, e.text) for e in found] for found in alone
    ]
    # Emissions are exactly the same batched or alone (int8 scales are static, never per batch:
    # tests/unit/training/test_quantize.py); the float32 forward-backward can round differently
    # in the last bit with the batch's width.
    tolerance = 1e-6
    for found_together, found_alone in zip(together, alone, strict=True):
        for a, b in zip(found_together, found_alone, strict=True):
            assert a.score == pytest.approx(b.score, abs=tolerance)


def test_the_shipped_model_finds_in_one_text_calls_what_it_finds_in_a_big_batch() -> None:
    """One text per call is what the HTTP API mostly makes; a call of many is the worker's."""
    from tests.records import mixed_records

    model = NerModel.load(provider="cpu", threads=1)
    texts = [record.text for record in mixed_records(150)]  # some long: several windows
    together = model.predict(texts)
    alone = [model.predict([text])[0] for text in texts]
    assert sum(map(len, together)) > 300
    assert [[(e.type, e.start, e.end, e.text) for e in found] for found in alone] == [
        [(e.type, e.start, e.end, e.text) for e in found] for found in together
    ]
    # Emissions are the same alone or batched (int8 scales are static); the forward-backward's
    # float32 products round with the batch's width, and a score is a difference of float32
    # running sums along the text (each step about 1e-7 relative).
    for found_alone, found_together in zip(alone, together, strict=True):
        for a, b in zip(found_alone, found_together, strict=True):
            assert a.score == pytest.approx(b.score, abs=2e-5)


@pytest.mark.training
def test_fp16_model_finds_what_the_float_model_finds(tiny_model: TinyModel) -> None:
    """The GPU's fp16 model, checked on CPU: same entities as fp32 on these texts, close scores."""
    fp32 = NerModel.load(tiny_model.model_dir, provider="cpu", precision="fp32")
    fp16 = NerModel.load(tiny_model.model_dir, provider="cpu", precision="fp16")
    assert (fp32.precision, fp16.precision) == ("fp32", "fp16")
    for found32, found16 in zip(fp32.predict(TEXTS), fp16.predict(TEXTS), strict=True):
        assert [(e.type, e.start, e.end) for e in found16] == [
            (e.type, e.start, e.end) for e in found32
        ]
        for a, b in zip(found32, found16, strict=True):
            assert a.score == pytest.approx(b.score, abs=0.02)


@pytest.mark.training
def test_entities_index_the_original_text(tiny_model: TinyModel) -> None:
    model = NerModel.load(tiny_model.model_dir, provider="cpu")
    from training.corpora import read_corpus

    texts = [example.text for example in read_corpus("msra-test")[:300]]
    # Full-width digits, ideographic spaces and "㎏" change under normalization.
    texts += [text.replace("1", "１").replace("，", "\u3000，") + "㎏" for text in texts[:50]]
    results = model.predict(texts)
    entities = [entity for found in results for entity in found]
    assert entities, "the tiny model should find some entities"
    for text, found in zip(texts, results, strict=True):
        for entity in found:
            assert entity.text == text[entity.start : entity.end]
            assert 0.0 < entity.score <= 1.0 + 1e-6
            assert entity.type in model.manifest.entity_types
        spans = [(entity.start, entity.end) for entity in found]
        assert spans == sorted(spans)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.training
def test_gpu_provider_that_cannot_start_falls_back_with_one_warning(
    tiny_model: TinyModel, caplog: pytest.LogCaptureFixture
) -> None:
    chain = provider_chain("auto", ort.get_available_providers())
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        model = NerModel.load(tiny_model.model_dir, provider="auto")
    assert model.provider in chain
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    if model.provider == CPU_PROVIDER and chain[0] != CPU_PROVIDER:
        assert len(warnings) == 1
        assert "falling back to CPU" in warnings[0].getMessage()
    else:
        assert not warnings


@pytest.mark.training
def test_a_damaged_model_directory_is_refused(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import shutil

    damaged = tmp_path_factory.mktemp("damaged") / "model"
    shutil.copytree(tiny_model.model_dir, damaged)
    (damaged / "model.int8.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError) as raised:
        NerModel.load(damaged)
    assert raised.value.code == ModelError.CHECKSUM_MISMATCH


@pytest.mark.training
def test_speed_harness(tiny_model: TinyModel) -> None:
    from training.speed import SENTENCE_LENGTH, sentences, throughput

    texts = sentences(40)
    assert len(texts) == 40
    assert {len(text) for text in texts} == {SENTENCE_LENGTH}
    model = NerModel.load(tiny_model.model_dir, provider="cpu")
    rate = throughput(model, texts, batch_size=16, repeats=1)
    assert rate.wall > 0
    assert rate.cpu > 0
