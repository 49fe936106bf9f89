"""Float ONNX model -> its int8 variant (dynamic quantization: weights int8, activations
quantized on the fly) for fast CPU inference, and its fp16 variant for GPUs.

In the int8 model the matrix products become int8 MatMuls (an LSTM a DynamicQuantizeLSTM) and the
embedding tables int8 Gathers (most of the model's bytes live there). The fp16 model keeps float32
inputs and outputs, so the runtime feeds it exactly like the float model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnx import helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

QUANTIZED_OPS = ["LSTM", "MatMul", "Gemm", "Gather"]


def quantize_int8(source: Path, target: Path) -> None:
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
    model = onnx.load(str(target))
    if quantize_before_gather(model):
        onnx.save(model, str(target))


def quantize_before_gather(model: onnx.ModelProto) -> int:
    """Quantize a convolution's input before gathering its taps, not after; returns how many
    convolutions changed.

    The quantizer turns ``Gather(h, rows) -> Reshape -> MatMul`` (training.model's convolution)
    into ``... -> DynamicQuantizeLinear -> MatMulInteger``, quantizing three copies of every row
    of ``h``. Quantizing ``h`` once and gathering its uint8 rows gives the same numbers: the scale
    comes from the range of the same values (a range always includes 0, the padding row), and it
    moves a quarter of the bytes: about 1.5 times as fast on one CPU thread (bench.int8_variants).
    """
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of the node they stand in for
    removed: set[int] = set()
    for quantize in graph.node:
        if quantize.op_type != "DynamicQuantizeLinear":
            continue
        reshape = producer.get(quantize.input[0])
        if reshape is None or reshape.op_type != "Reshape":
            continue
        gather = producer.get(reshape.input[0])
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in producer:
            continue  # not a gather of computed rows (an embedding table is an initializer)
        if readers[reshape.output[0]] != 1 or readers[gather.output[0]] != 1:
            continue
        rows_uint8, taps = f"{quantize.name}/rows", f"{quantize.name}/taps"
        replaced[id(quantize)] = [
            helper.make_node(
                "DynamicQuantizeLinear",
                [gather.input[0]],
                [rows_uint8, *quantize.output[1:]],
                name=quantize.name,
            ),
            helper.make_node(
                "Gather", [rows_uint8, gather.input[1]], [taps], name=f"{gather.name}/uint8", axis=0
            ),
            helper.make_node(
                "Reshape",
                [taps, reshape.input[1]],
                [quantize.output[0]],
                name=f"{reshape.name}/uint8",
            ),
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
    onnx.checker.check_model(model)
    return len(replaced)


def convert_fp16(source: Path, target: Path) -> None:
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
