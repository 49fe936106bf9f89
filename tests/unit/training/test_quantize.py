"""training.quantize: the int8 model gives every text the same entities whatever its batch, and
its graph has static, calibrated scales (none computed per batch), close to the float model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.features import Featurizer
from models.manifest import FLOAT_MODEL, INT8_MODEL
from models.runtime import CPU_PROVIDER, Entity, NerModel
from tests.conftest import TinyModel
from training.quantize import (
    CALIBRATION_BATCH,
    CALIBRATION_SENTENCES,
    calibration_batches,
    quantize_int8,
    quantize_per_batch,
)

SEEDS = [
    "中共中央总书记、国家主席江泽民今天在北京会见了美国总统克林顿。",
    "１９９７年，全国有３００多万人参加了这次活动。",
    "新华社北京十二月三十一日电",
    "在这里",
    "张三在Google Shanghai工作，email: zhang@example.com 😀🏃‍♀️",
    "患者王某，男，65岁，因咳嗽3天于2023年5月到北京协和医院呼吸科就诊。",
    "KFC和麦当劳在上海浦东开了新店！！哈哈哈哈😂😂",
    "東京と大阪、서울과 부산, Paris et Lyon",
    "",
    "   ",
    "李",
]


def varied_texts(count: int) -> list[str]:
    """Short, long (several windows of the tiny model's 40), mixed scripts and emoji."""
    chance = random.Random(7)
    texts = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            texts.append(chance.choice(SEEDS))
        elif kind == 1:
            texts.append("".join(chance.sample(SEEDS, 4)))  # ~100+ characters: 3-5 windows
        elif kind == 2:
            text = chance.choice(SEEDS)
            cut = chance.randrange(len(text) + 1)
            texts.append(text[:cut] + "😀" * chance.randrange(3) + text[cut:])
        else:
            texts.append("".join(chance.sample(SEEDS, 2))[: chance.randrange(1, 60)])
    return texts


def keyed(found: list[Entity]) -> list[tuple[str, int, int, str]]:
    return [(e.type, e.start, e.end, e.text) for e in found]


def _session(path: Path, level: ort.GraphOptimizationLevel) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(str(path), options, providers=[CPU_PROVIDER])


@pytest.mark.training
def test_int8_entities_do_not_depend_on_the_batch(tiny_model: TinyModel) -> None:
    """Shuffled and re-batched, every text gets the same entities and scores.

    Entities must be identical; scores agree within 1e-6, not exactly: the network's emissions
    are bit-identical (next test), but the float32 forward-backward in models.tags sums over a
    batch's padded width and may round differently in the last bit.
    """
    texts = varied_texts(300)
    together = NerModel.load(tiny_model.model_dir, provider="cpu", precision="int8")
    assert together.precision == "int8"
    expected = together.predict(texts)
    assert any(expected), "the tiny model should find some entities"
    chance = random.Random(11)
    for batch_size, onnx_batch in [(1, 8), (7, 3), (64, 8), (300, 32)]:
        model = NerModel.load(
            tiny_model.model_dir, provider="cpu", precision="int8", onnx_batch=onnx_batch
        )
        order = list(range(len(texts)))
        chance.shuffle(order)
        found: dict[int, list[Entity]] = {}
        for first in range(0, len(order), batch_size):
            chunk = order[first : first + batch_size]
            for index, entities in zip(
                chunk, model.predict([texts[i] for i in chunk]), strict=True
            ):
                found[index] = entities
        for index, entities in found.items():
            assert keyed(entities) == keyed(expected[index]), (batch_size, texts[index])
            for a, b in zip(entities, expected[index], strict=True):
                assert a.score == pytest.approx(b.score, abs=1e-6)


@pytest.mark.training
def test_int8_network_rows_do_not_depend_on_their_batch_or_padding(tiny_model: TinyModel) -> None:
    """A row's emissions are bit-identical alone, in any batch, with any amount of padding."""
    texts = [text[:40] for text in varied_texts(24) if text]
    featurizer = Featurizer.load(tiny_model.model_dir, 8)
    session = _session(tiny_model.model_dir / INT8_MODEL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    batch = featurizer.encode(texts)
    together = session.run(None, batch.as_inputs())[0]
    reversed_batch = featurizer.encode(texts[::-1], pad_to=57)
    backwards = session.run(None, reversed_batch.as_inputs())[0][::-1]
    for row, text in enumerate(texts):
        alone = session.run(None, featurizer.encode([text]).as_inputs())[0][0]
        np.testing.assert_array_equal(together[row, : len(text)], alone)
        np.testing.assert_array_equal(backwards[row, : len(text)], alone)


@pytest.mark.training
def test_int8_graph_has_static_scales_and_stays_close_to_float(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    """No scale is computed at run time; convolution taps are gathered as uint8; onnxruntime's
    fusions keep the numbers; the emissions stay about as close to float32 as the quantizer's
    own graph, whose scales are fitted to each batch."""
    path = tiny_model.model_dir / INT8_MODEL
    graph = onnx.load(str(path)).graph
    producer = {output: node for node in graph.node for output in node.output}
    constants = {tensor.name for tensor in graph.initializer}
    assert not [node for node in graph.node if node.op_type == "DynamicQuantizeLinear"]
    quantizers = [node for node in graph.node if node.op_type == "QuantizeLinear"]
    assert quantizers
    assert all(set(node.input[1:]) <= constants for node in quantizers)
    gathered = [
        producer[node.input[0]].op_type
        for node in graph.node
        if node.op_type == "Gather" and node.input[0] in producer
    ]
    assert gathered.count("QuantizeLinear") == len(tiny_model_dilations(tiny_model))

    plain = tmp_path / "plain.int8.onnx"
    quantize_per_batch(tiny_model.model_dir / FLOAT_MODEL, plain)
    batch = Featurizer.load(tiny_model.model_dir, 8).encode(SEEDS)
    inputs = batch.as_inputs()
    mask = np.arange(batch.chars.shape[1])[None, :] < batch.lengths[:, None]
    levels = ort.GraphOptimizationLevel
    fused = _session(path, levels.ORT_ENABLE_ALL).run(None, inputs)[0]
    unfused = _session(path, levels.ORT_DISABLE_ALL).run(None, inputs)[0]
    np.testing.assert_allclose(fused[mask], unfused[mask], atol=1e-5)
    exact = _session(tiny_model.model_dir / FLOAT_MODEL, levels.ORT_ENABLE_ALL).run(None, inputs)
    per_batch = _session(plain, levels.ORT_ENABLE_ALL).run(None, inputs)[0]
    error = np.abs(fused - exact[0])[mask].mean()
    # Calibrated ranges cover every batch, so they can be wider than one batch's own; 2x leaves
    # room for that and catches a misapplied scale or zero point.
    assert error <= 2 * np.abs(per_batch - exact[0])[mask].mean() + 1e-4


def tiny_model_dilations(tiny_model: TinyModel) -> list[int]:
    manifest = json.loads((tiny_model.model_dir / "manifest.json").read_text())
    dilations: list[int] = manifest["training"]["dilations"]
    return dilations


def _matmul_model(weights: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", weights.shape[1]])],
        [numpy_helper.from_array(weights, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_scales_come_from_the_calibration_range(tmp_path: Path) -> None:
    """A signed input gets the scale and zero point of the range it took in calibration: rows
    inside it come out close to the float product, a zero row exactly zero, and values beyond
    it saturate at the range's ends instead of wrapping around."""
    chance = np.random.default_rng(3)
    weights = chance.normal(size=(16, 8)).astype(np.float32)
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(_matmul_model(weights), source)
    calibration = [{"x": np.array([[-2.0] + [0.0] * 15, [6.0] + [0.0] * 15], np.float32)}]
    quantize_int8(source, target, calibration)
    graph = onnx.load(str(target)).graph
    (quantize,) = [node for node in graph.node if node.op_type == "QuantizeLinear"]
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    step = 8.0 / 255
    assert constants[quantize.input[1]] == pytest.approx(step)
    assert constants[quantize.input[2]] == round(2.0 / step)  # 64: where 0 lands

    session = _session(target, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    rows = np.clip(chance.normal(size=(5, 16)) * 2, -2, 6).astype(np.float32)
    rows[3] = 0
    products = session.run(None, {"x": rows})[0]
    # Each input element is off by at most half a step; the int8 weights add a little more.
    tolerance = step * np.abs(weights).sum(axis=0).max()
    np.testing.assert_allclose(products, rows @ weights, atol=tolerance)
    assert not np.abs(products[3]).any()
    saturated = session.run(None, {"x": np.full((1, 16), 100.0, np.float32)})[0]
    np.testing.assert_allclose(saturated, np.full((1, 16), 6.0) @ weights, atol=tolerance)


def test_calibration_needs_activations(tmp_path: Path) -> None:
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(_matmul_model(np.ones((4, 2), np.float32)), source)
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(source, target, [])


@pytest.mark.training
def test_calibration_samples_each_training_source(tiny_model: TinyModel) -> None:
    """A seeded sample of every source, windows no longer than the model's; an older manifest's
    single source (a plain string) means the same as a list of one."""
    featurizer = Featurizer.load(tiny_model.model_dir, 8)
    batches = calibration_batches(featurizer, ["msra-train", "msra-test*2"], 40)
    assert sum(len(batch["lengths"]) for batch in batches) == 2 * CALIBRATION_SENTENCES
    assert all(len(batch["lengths"]) <= CALIBRATION_BATCH for batch in batches)
    assert max(int(batch["lengths"].max()) for batch in batches) == 40
    alone = calibration_batches(featurizer, "msra-train", 40)
    assert len(alone) == CALIBRATION_SENTENCES // CALIBRATION_BATCH
    for ours, theirs in zip(
        alone, calibration_batches(featurizer, ["msra-train"], 40), strict=True
    ):
        np.testing.assert_array_equal(ours["chars"], theirs["chars"])


@pytest.mark.training
def test_int8_variants_benchmark(tiny_model: TinyModel, tmp_path: Path) -> None:
    from bench.int8_variants import BASELINE, main

    out = tmp_path / "int8.json"
    assert main(["--model", str(tiny_model.model_dir), "--rounds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["sentences_per_cpu_second"]) == {
        "fp32",
        BASELINE,
        "int8, static scales (exported)",
        "int8, the directory's own file",
    }
    assert report["ratios"][BASELINE] == 1.0
    assert all(rate > 0 for rate in report["sentences_per_cpu_second"].values())
