"""Float ONNX model -> its int8 variant for fast CPU inference, and its fp16 variant for GPUs.

The int8 model has int8 weights, and activations quantized with *static* scales: one scale and
zero point per activation tensor, calibrated once on sample batches (the float range each tensor
took there) and stored in the graph. A text's result therefore cannot depend on the other texts
of its batch, their order or their padding, and no pass over the activations is spent finding
their range. onnxruntime's quantizer computes one scale per tensor *on the fly*
(DynamicQuantizeLinear, over the whole padded batch); :func:`fix_scales` turns each of those into
a QuantizeLinear with the calibrated constants. Values outside the calibrated range saturate.
Embedding tables become int8 Gathers (most of the model's bytes live there). LSTMs stay float:
onnxruntime's DynamicQuantizeLSTM quantizes its inputs per batch.

The fp16 model keeps float32 inputs and outputs, so the runtime feeds it exactly like the float
model.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

from models.features import Featurizer
from training.data import parse_weighted, read_data, sentences

QUANTIZED_OPS = ["MatMul", "Gemm", "Gather"]
#: A tensor that was constant zero in calibration still gets a valid (positive) scale.
_SMALLEST_SCALE = 1e-8

Batch = Mapping[str, np.ndarray]
Range = tuple[float, float]


#: Sentences of each training source whose activations calibrate the int8 model's scales.
CALIBRATION_SENTENCES = 256
CALIBRATION_BATCH = 32


def calibration_batches(
    featurizer: Featurizer, train_data: Sequence[str] | str, max_length: int
) -> list[dict[str, np.ndarray]]:
    """Model inputs for int8 calibration: a seeded sample of each training source's sentences,
    cut to the model's window length as serving cuts them. ``train_data`` is a manifest's
    training sources (older manifests hold one source as a plain string)."""
    chance = random.Random(0)
    texts: list[str] = []
    for entry in [train_data] if isinstance(train_data, str) else train_data:
        name, _ = parse_weighted(entry)
        pieces = [
            piece.text[:max_length] for example in read_data(name) for piece in sentences(example)
        ]
        texts += chance.sample(pieces, min(CALIBRATION_SENTENCES, len(pieces)))
    return [
        featurizer.encode(texts[first : first + CALIBRATION_BATCH]).as_inputs()
        for first in range(0, len(texts), CALIBRATION_BATCH)
    ]


def quantize_per_batch(source: Path, target: Path) -> None:
    """onnxruntime's quantizer's own graph: int8 weights, activation scales computed per batch
    (what :func:`quantize_int8` starts from; bench.int8_variants and the tests compare with it)."""
    # The quantizer logs advice and per-tensor notes on the root logger; none of it applies here.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=QUANTIZED_OPS,
            weight_type=QuantType.QInt8,
            per_channel=False,
        )
    finally:
        logging.disable(logging.NOTSET)


def quantize_int8(source: Path, target: Path, calibration: Iterable[Batch]) -> None:
    """The batch-invariant int8 model: the quantizer's graph with scales calibrated on
    ``calibration`` (model input batches), convolution taps gathered as uint8."""
    quantize_per_batch(source, target)
    model = onnx.load(str(target))
    fix_scales(model, activation_ranges(model, calibration))
    gather_quantized_rows(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def _dynamic_quantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]


def activation_ranges(model: onnx.ModelProto, calibration: Iterable[Batch]) -> dict[str, Range]:
    """Per input of a DynamicQuantizeLinear: the (min, max) it took over ``calibration``,
    widened to include 0 (as DynamicQuantizeLinear's own range is)."""
    names = [node.input[0] for node in _dynamic_quantizers(model)]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in names
        if name not in known
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    ranges = dict.fromkeys(names, (0.0, 0.0))
    for batch in calibration:
        for name, values in zip(names, session.run(names, dict(batch)), strict=True):
            low, high = ranges[name]
            ranges[name] = (min(low, float(values.min())), max(high, float(values.max())))
    if not any(high > low for low, high in ranges.values()) and names:
        raise ValueError("calibration gave no activations: pass at least one non-empty batch")
    return ranges


def fix_scales(model: onnx.ModelProto, ranges: Mapping[str, Range]) -> int:
    """Replace every DynamicQuantizeLinear by a QuantizeLinear with the uint8 scale and zero
    point of its input's calibrated range; returns how many were replaced.

    The scale and zero point keep their tensor names, now initializers, so the quantizer's
    MatMulInteger/Mul graph that reads them is unchanged and onnxruntime fuses it as before.
    """
    quantizers = _dynamic_quantizers(model)
    for node in quantizers:
        low, high = ranges[node.input[0]]
        scale = max((high - low) / 255, _SMALLEST_SCALE)
        zero_point = int(np.clip(round(-low / scale), 0, 255))
        y, y_scale, y_zero_point = node.output
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale, np.float32), y_scale),
                numpy_helper.from_array(np.array(zero_point, np.uint8), y_zero_point),
            ]
        )
        node.op_type = "QuantizeLinear"
        del node.output[:]
        node.output.append(y)
        node.input.extend([y_scale, y_zero_point])
    return len(quantizers)


def gather_quantized_rows(model: onnx.ModelProto) -> int:
    """Quantize a convolution's input before gathering its taps; returns how many changed.

    training.model's convolution is ``Gather(h, taps) -> Reshape -> MatMul``, and the quantizer
    quantizes the gathered taps, three copies of every row of ``h``. With a fixed scale,
    quantizing ``h`` once and gathering uint8 rows gives the same numbers and moves a quarter of
    the bytes (bench.int8_variants).
    """
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of a node -> the nodes standing in for it
    removed: set[int] = set()
    for quantize in graph.node:
        if quantize.op_type != "QuantizeLinear":
            continue
        reshape = producer.get(quantize.input[0])
        if reshape is None or reshape.op_type != "Reshape":
            continue
        gather = producer.get(reshape.input[0])
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in producer:
            continue  # not a gather of computed rows (an embedding table is constant)
        if readers[reshape.output[0]] != 1 or readers[gather.output[0]] != 1:
            continue
        rows, taps = f"{quantize.name}/rows", f"{quantize.name}/taps"
        replaced[id(quantize)] = [
            helper.make_node("QuantizeLinear", [gather.input[0], *quantize.input[1:]], [rows]),
            helper.make_node("Gather", [rows, gather.input[1]], [taps], axis=0),
            helper.make_node("Reshape", [taps, reshape.input[1]], [quantize.output[0]]),
        ]
        removed |= {id(gather), id(reshape)}
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes += replaced[id(node)]
        elif id(node) not in removed:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


def convert_fp16(source: Path, target: Path) -> None:
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
