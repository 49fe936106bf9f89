"""Float ONNX model -> its int8 variant for fast CPU inference, and its fp16 variant for GPUs.

The int8 model has int8 weights, and activations quantized on the fly with scales that never
mix texts: a text's result does not depend on the other texts of its batch, their order or
their padding. onnxruntime's quantizer computes one activation scale per tensor
(DynamicQuantizeLinear), i.e. over the whole padded batch; ``quantize_per_row`` rewrites its
graph. Embedding tables become int8 Gathers (most of the model's bytes live there). LSTMs stay
float: onnxruntime's DynamicQuantizeLSTM quantizes its inputs per batch.

The fp16 model keeps float32 inputs and outputs, so the runtime feeds it exactly like the float
model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

QUANTIZED_OPS = ["MatMul", "Gemm", "Gather"]
#: The model inputs that give a convolution's row layout (training.export.INPUT_NAMES): its
#: rows are the (batch, time) positions of ``chars``, and ``lengths`` says which are real.
TOKENS_INPUT = "chars"
LENGTHS_INPUT = "lengths"
#: Operators whose output is non-negative when their data inputs are.
_SIGN_KEEPING = {"Gather", "Reshape", "Slice", "Squeeze", "Unsqueeze", "Flatten"}
_PREFIX = "per_row"  # names of the initializers and shared nodes the rewrite adds
_MICROSOFT = "com.microsoft"


def quantize_int8(source: Path, target: Path) -> None:
    """The batch-invariant int8 model: the quantizer's graph, rewritten by quantize_per_row."""
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
    quantize_per_row(model)
    onnx.save(model, str(target))


def quantize_per_row(model: onnx.ModelProto) -> int:
    """Replace every DynamicQuantizeLinear (one scale per tensor) of the quantizer's graph by
    quantization with one scale per row; returns how many were replaced.

    A row of a matrix product's input (a character's features) gets the scale
    ``max |row| / 127`` and zero point 128, or, when the input is provably non-negative (sums of
    ReLUs, as in training.model), ``max row / 255`` and zero point 0: uint8 either way, so
    MatMulInteger keeps its u8 x s8 kernels. The int32 product becomes float times the weights'
    scale in one MatMulIntegerToFloat (what onnxruntime fuses the quantizer's graph into), then
    times each row's scale.

    A convolution (training.model: ``Gather(h, taps) -> Reshape -> MatMul``) puts three rows of
    ``h`` in one row of taps, so their scales must agree: there ``h`` is quantized before the
    gather with one scale per *sentence* (window), the maximum over its real positions by
    ``lengths``, and the gather moves uint8 taps, a quarter of the bytes of float taps
    (bench.int8_variants). A tap outside the sentence is the all-zero row, 0 at any scale;
    padding positions use their sentence's scale and never reach a real position; rows after
    the batch's positions (the zero row) keep scales of their own.
    """
    graph = _Graph(model)
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of a node -> the nodes standing in for it
    removed: set[int] = set()
    quantizers = [node for node in graph.graph.node if node.op_type == "DynamicQuantizeLinear"]
    for quantize in quantizers:
        found = graph.gathered_rows(quantize)
        if found is None:
            nodes = _per_row(graph, quantize)
        else:
            gather, reshape = found
            nodes = _per_sentence_before_gather(graph, quantize, gather, reshape)
            removed |= {id(gather), id(reshape)}
        replaced[id(quantize)] = nodes
        for chain in _products(graph, quantize):
            replaced[id(chain[0])] = _scaled_product(graph, quantize, chain)
            removed |= {id(node) for node in chain[1:]}
    nodes = []
    for node in graph.graph.node:
        if id(node) in replaced:
            nodes += replaced[id(node)]
        elif id(node) not in removed:
            nodes.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    if replaced and not any(entry.domain == _MICROSOFT for entry in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MICROSOFT, 1))
    onnx.checker.check_model(model)
    return len(quantizers)


class _Graph:
    """The quantizer's graph with lookups by tensor name, and the constants the rewrite adds."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.producer = {output: node for node in self.graph.node for output in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.constants = {tensor.name: tensor for tensor in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute[0].name == "value":
                self.constants[node.output[0]] = node.attribute[0].t
        self.inputs = {value.name for value in self.graph.input}
        self._added: set[str] = set()

    def constant(self, name: str, value: np.ndarray) -> str:
        full = f"{_PREFIX}/{name}"
        if full not in self._added:
            self.graph.initializer.append(numpy_helper.from_array(value, full))
            self._added.add(full)
        return full

    def once(self, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """``nodes`` the first time their outputs are asked for, then none (shared values)."""
        if nodes[-1].output[0] in self._added:
            return []
        self._added.add(nodes[-1].output[0])
        return nodes

    def nonnegative(self, name: str, depth: int = 0) -> bool:
        """Whether a tensor is provably >= 0: ReLUs, their sums, reshapes and gathers."""
        if name in self.constants:
            return bool((numpy_helper.to_array(self.constants[name]) >= 0).all())
        node = self.producer.get(name)
        if node is None or depth > 100:
            return False
        if node.op_type == "Relu":
            return True
        if node.op_type in _SIGN_KEEPING:
            return self.nonnegative(node.input[0], depth + 1)
        if node.op_type in {"Add", "Concat"}:
            return all(self.nonnegative(value, depth + 1) for value in node.input)
        return False

    def gathered_rows(
        self, quantize: onnx.NodeProto
    ) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
        """(Gather, Reshape) when ``quantize`` reads ``Reshape(Gather(h, taps))`` of computed
        rows ``h`` (training.model's convolution), else None."""
        reshape = self.producer.get(quantize.input[0])
        if reshape is None or reshape.op_type != "Reshape":
            return None
        gather = self.producer.get(reshape.input[0])
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in self.producer:
            return None  # not a gather of computed rows (an embedding table is constant)
        if len(self.readers[reshape.output[0]]) != 1 or len(self.readers[gather.output[0]]) != 1:
            return None
        if not {TOKENS_INPUT, LENGTHS_INPUT} <= self.inputs:
            raise ValueError(
                f"{quantize.name}: per-sentence scales need the model inputs "
                f"{TOKENS_INPUT!r} and {LENGTHS_INPUT!r}"
            )
        return gather, reshape


def _quantize_rows(
    graph: _Graph, prefix: str, rows: str, maxima: str, *, signed: bool, output: str
) -> list[onnx.NodeProto]:
    """Nodes quantizing 2-D ``rows`` (N, C) to uint8 ``output`` with each row's scale taken from
    ``maxima`` (N,), its ``max |row|``; the scales land in ``{prefix}/scale`` (N, 1)."""
    levels = 127 if signed else 255
    inverse = graph.constant(f"inverse_{levels}", np.array(1 / levels, np.float32))
    # An all-zero row gets the smallest normal scale and quantizes to zeros.
    tiny = graph.constant("tiny", np.array(np.finfo(np.float32).tiny, np.float32))
    axis = graph.constant("axis_1", np.array([1], np.int64))
    one = graph.constant("one", np.array(1.0, np.float32))
    zero_point = graph.constant(f"zero_point_{levels}", np.array(255 - levels, np.uint8))
    p = prefix
    # Dividing by each row's scale, then one QuantizeLinear of scale 1 for the whole tensor,
    # is faster in onnxruntime than QuantizeLinear's per-axis scales.
    return [
        helper.make_node("Mul", [maxima, inverse], [f"{p}/raw_scale"]),
        helper.make_node("Max", [f"{p}/raw_scale", tiny], [f"{p}/row_scale"]),
        helper.make_node("Unsqueeze", [f"{p}/row_scale", axis], [f"{p}/scale"]),
        helper.make_node("Reciprocal", [f"{p}/scale"], [f"{p}/inverse_scale"]),
        helper.make_node("Mul", [rows, f"{p}/inverse_scale"], [f"{p}/scaled"]),
        helper.make_node("QuantizeLinear", [f"{p}/scaled", one, zero_point], [output]),
    ]


def _row_maxima(prefix: str, rows: str, signed: bool) -> list[onnx.NodeProto]:
    """``{prefix}/row_max`` (N,): ``max |row|`` of each row of 2-D ``rows``."""
    nodes = []
    if signed:
        nodes.append(helper.make_node("Abs", [rows], [f"{prefix}/abs"]))
        rows = f"{prefix}/abs"
    reduce = helper.make_node("ReduceMax", [rows], [f"{prefix}/row_max"], axes=[1], keepdims=0)
    return [*nodes, reduce]


def _per_row(graph: _Graph, quantize: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Each row (along the last axis, any rank) with its own scale."""
    source, p = quantize.input[0], quantize.name
    signed = not graph.nonnegative(source)
    ones = graph.constant("one_index", np.array([1], np.int64))
    return [
        helper.make_node("Flatten", [source], [f"{p}/flat"], axis=-1),
        *_row_maxima(p, f"{p}/flat", signed),
        *_quantize_rows(
            graph, p, f"{p}/flat", f"{p}/row_max", signed=signed, output=f"{p}/quantized"
        ),
        helper.make_node("Shape", [source], [f"{p}/shape"]),
        helper.make_node("Reshape", [f"{p}/quantized", f"{p}/shape"], [quantize.output[0]]),
        # The product's rows are the input's: its scales take the input's leading axes.
        helper.make_node("Shape", [source], [f"{p}/leading"], end=-1),
        helper.make_node("Concat", [f"{p}/leading", ones], [f"{p}/scale_shape"], axis=0),
        helper.make_node("Reshape", [f"{p}/scale", f"{p}/scale_shape"], [f"{p}/product_scale"]),
    ]


def _positions(graph: _Graph) -> list[onnx.NodeProto]:
    """Shared by every convolution: ``per_row/batch_shape`` (B, T) of the tokens, their count
    ``per_row/positions`` (1,), and ``per_row/real`` (B, T), which positions are not padding."""
    p = _PREFIX
    return graph.once(
        [
            helper.make_node("Shape", [TOKENS_INPUT], [f"{p}/batch_shape"]),
            helper.make_node("ReduceProd", [f"{p}/batch_shape"], [f"{p}/positions"], keepdims=1),
            helper.make_node(
                "Gather",
                [f"{p}/batch_shape", graph.constant("one_scalar", np.array(1, np.int64))],
                [f"{p}/steps"],
                axis=0,
            ),
            helper.make_node(
                "Range",
                [
                    graph.constant("zero_scalar", np.array(0, np.int64)),
                    f"{p}/steps",
                    graph.constant("one_scalar", np.array(1, np.int64)),
                ],
                [f"{p}/step_index"],
            ),
            helper.make_node("Cast", [LENGTHS_INPUT], [f"{p}/lengths"], to=onnx.TensorProto.INT64),
            helper.make_node(
                "Unsqueeze",
                [f"{p}/lengths", graph.constant("axis_1", np.array([1], np.int64))],
                [f"{p}/length_column"],
            ),
            helper.make_node("Less", [f"{p}/step_index", f"{p}/length_column"], [f"{p}/real"]),
        ]
    )


def _per_sentence_before_gather(
    graph: _Graph, quantize: onnx.NodeProto, gather: onnx.NodeProto, reshape: onnx.NodeProto
) -> list[onnx.NodeProto]:
    """``h`` (B x T + extra rows, C) with one scale per sentence, then its uint8 taps gathered."""
    rows, p, shared = gather.input[0], quantize.name, _PREFIX
    signed = not graph.nonnegative(rows)
    start = graph.constant("zero_index", np.array([0], np.int64))
    end = graph.constant("end_index", np.array([np.iinfo(np.int64).max], np.int64))
    return [
        *_positions(graph),
        *_row_maxima(p, rows, signed),
        # Each sentence's maximum over its real positions, for all its positions.
        helper.make_node("Slice", [f"{p}/row_max", start, f"{shared}/positions"], [f"{p}/pm"]),
        helper.make_node("Reshape", [f"{p}/pm", f"{shared}/batch_shape"], [f"{p}/grid"]),
        helper.make_node(
            "Where",
            [f"{shared}/real", f"{p}/grid", graph.constant("zero", np.array(0.0, np.float32))],
            [f"{p}/real_grid"],
        ),
        helper.make_node("ReduceMax", [f"{p}/real_grid"], [f"{p}/sentence_max"], axes=[1]),
        helper.make_node(
            "Expand", [f"{p}/sentence_max", f"{shared}/batch_shape"], [f"{p}/sentence_grid"]
        ),
        helper.make_node(
            "Reshape",
            [f"{p}/sentence_grid", graph.constant("flat", np.array([-1], np.int64))],
            [f"{p}/sentence_rows"],
        ),
        # Rows after the positions (the zero row) keep their own maxima.
        helper.make_node("Slice", [f"{p}/row_max", f"{shared}/positions", end], [f"{p}/extra"]),
        helper.make_node("Concat", [f"{p}/sentence_rows", f"{p}/extra"], [f"{p}/maxima"], axis=0),
        *_quantize_rows(graph, p, rows, f"{p}/maxima", signed=signed, output=f"{p}/rows"),
        helper.make_node("Gather", [f"{p}/rows", gather.input[1]], [f"{p}/taps"], axis=0),
        helper.make_node("Reshape", [f"{p}/taps", reshape.input[1]], [quantize.output[0]]),
        # Row i of the taps holds position i's neighbours, all quantized with its scale.
        helper.make_node("Identity", [f"{p}/scale"], [f"{p}/product_scale"]),
    ]


def _products(
    graph: _Graph, quantize: onnx.NodeProto
) -> list[tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto, onnx.NodeProto]]:
    """The quantizer's ``Mul(Cast(MatMulInteger(y, w)), Mul(y_scale, w_scale))`` chains that
    read ``quantize``'s outputs, as (MatMulInteger, Cast, Mul of scales, product Mul)."""
    chains = []
    for matmul in graph.readers.get(quantize.output[0], []):
        casts = graph.readers.get(matmul.output[0], [])
        products = [p for c in casts for p in graph.readers.get(c.output[0], [])]
        scales = graph.readers.get(quantize.output[1], [])
        if (
            matmul.op_type != "MatMulInteger"
            or [c.op_type for c in casts] != ["Cast"]
            or [p.op_type for p in products] != ["Mul"]
            or len(scales) != 1
            or scales[0].output[0] not in products[0].input
        ):
            raise ValueError(f"{quantize.name}: not the quantizer's MatMulInteger graph")
        chains.append((matmul, casts[0], scales[0], products[0]))
    return chains


def _scaled_product(
    graph: _Graph,
    quantize: onnx.NodeProto,
    chain: tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto, onnx.NodeProto],
) -> list[onnx.NodeProto]:
    """MatMulIntegerToFloat with the weights' scale, then the rows' scales.

    The row scales are not handed to MatMulIntegerToFloat (nor left in the Mul that
    onnxruntime fuses into it): it takes one scale for all rows of A.
    """
    matmul, _, scales, product = chain
    weight_scale = next(name for name in scales.input if name != quantize.output[1])
    signed = not graph.nonnegative(quantize.input[0])
    zero = graph.constant(f"zero_scalar_{int(signed)}", np.array(128 if signed else 0, np.uint8))
    one = graph.constant("one", np.array(1.0, np.float32))
    a, b, _, b_zero = matmul.input
    unscaled = f"{product.output[0]}/unscaled"
    return [
        helper.make_node(
            "MatMulIntegerToFloat",
            [a, b, one, weight_scale, zero, b_zero],
            [unscaled],
            name=matmul.name,
            domain=_MICROSOFT,
        ),
        helper.make_node(
            "Mul",
            [unscaled, f"{quantize.name}/product_scale"],
            [product.output[0]],
            name=product.name,
        ),
    ]


def convert_fp16(source: Path, target: Path) -> None:
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
