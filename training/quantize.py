"""Float ONNX model -> int8 model by dynamic quantization (weights int8, activations quantized
on the fly), for fast CPU inference.

The LSTM weights become a DynamicQuantizeLSTM, the projection an int8 MatMul, and the embedding
tables int8 Gathers (most of the model's bytes live there).
"""

from __future__ import annotations

import logging
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

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
