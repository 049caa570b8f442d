"""An int8 copy of a large gallery for identify's first pass: onnxruntime's MatMulInteger kernel (uint8 x int8),
with a proven bound on its error, so that the exact recomputation of the candidates gives the brute-force result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

# From this many rows a Gallery keeps an int8 copy and identify's first pass (squared L2) runs on it: it reads a
# quarter of the bytes of the float32 pass, which is bound by memory traffic on a large gallery. Chosen by
# measurement (benchmarks/identify.py, "int8 first pass"; docs/benchmarks.md, "Identify: 1:K over 128-d galleries").
INT8_MIN_ROWS = 10_000
# Codes are symmetric (no zero point on the gallery side): queries in [-127, 127], gallery rows in [-63, 63]. Seven
# bits on the gallery side keep the kernel's sums exact on CPUs without VNNI, whose AVX2 path adds pairs of uint8 x
# int8 products in saturating int16 (2 * 255 * 63 < 32768; 2 * 255 * 127 is not). tests/test_embeddings_int8.py
# checks the sums against int64 on the extreme codes.
QUERY_LEVELS, GALLERY_LEVELS = 127, 63
# The query's codes go to the kernel shifted into uint8; its sums are corrected by 128 times each row's code sum
# (kept with the gallery): without a zero point the kernel skips a pass over the gallery.
QUERY_SHIFT = 128
EXACT_IN_FLOAT32 = 2**24  # |sum of D products of codes| below this converts to float32 exactly
BLOCK = 1024  # gallery rows quantized and transposed at a time


def codes(x: np.ndarray, scale: np.ndarray, levels: int) -> np.ndarray:
    """x: (N, D) float32, scale: (N, 1) or () float > 0. Returns (N, D) int8 round(x / scale) in [-levels,
    levels]."""
    return np.clip(np.rint(x / scale), -levels, levels).astype(np.int8)


@dataclass(frozen=True, eq=False)
class Int8Rows:
    """A gallery (G, D) float32 as int8 codes (in [-63, 63]) with one scale: each row is scale * code within
    scale / 2 per component. codes_t: (D, G) int8, transposed for MatMulInteger. l1_max: the largest ||row||_1."""

    codes_t: np.ndarray
    scale: float
    l1_max: float
    offsets: np.ndarray = field(repr=False)  # (G,) int32: 128 * each row's sum of codes
    _run: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(repr=False)

    @classmethod
    def of(cls, embeddings: np.ndarray) -> Int8Rows:
        """embeddings: (G, D) float32, finite, G >= 1. Quantized and transposed a block of rows at a time (a
        cache-sized transpose; the whole one at once is several times slower)."""
        g, d = embeddings.shape
        largest = max(float(embeddings.max()), -float(embeddings.min()))  # no (G, D) temporary
        scale = np.float32(largest / GALLERY_LEVELS if largest > 0 else 1.0)
        codes_t = np.empty((d, g), np.int8)
        l1 = np.empty(g, np.float32)
        for start in range(0, g, BLOCK):
            block = embeddings[start : start + BLOCK]
            codes_t[:, start : start + BLOCK] = codes(block, scale, GALLERY_LEVELS).T
            l1[start : start + BLOCK] = np.abs(block).sum(axis=1)
        codes_t.flags.writeable = False
        offsets = QUERY_SHIFT * codes_t.sum(axis=0, dtype=np.int32)
        # A float32 sum of D terms >= 0 is within (D - 1) eps of the exact one: widened so the bound stays one.
        l1_max = float(l1.max()) * (1 + d * float(np.finfo(np.float32).eps))
        return cls(codes_t, float(scale), l1_max, offsets, _matmul_integer())

    def distances(self, q: np.ndarray, q_sq: np.ndarray, g_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared L2 from the int8 codes and how far two rows' values can be from their exact order.

        q: (Q, D) float32, q_sq: (Q,) float32 ||q||^2, g_sq: (G,) float32 ||g||^2. Returns (Q, G) float32
        distances and (Q,) float64 margins. With q = sq * Q + e and g = sg * C + f (|e| <= sq / 2, |f| <= sg / 2
        per component), q.g - sq sg Q.C = sum(sq Q f + e g), at most sg / 2 * ||sq Q||_1 + sq / 2 * ||g||_1: one
        distance errs by twice that (plus float32's roundings, bounded as in embeddings._fast_error_margin, added
        by the caller), two rows' by four times.
        """
        largest = np.abs(q).max(axis=1, keepdims=True).astype(np.float64)  # (Q, 1)
        q_scale = np.where(largest > 0, largest / QUERY_LEVELS, 1.0)
        q_codes = codes(q, q_scale.astype(np.float32), QUERY_LEVELS)  # (Q, D)
        shifted = (q_codes.astype(np.int16) + QUERY_SHIFT).astype(np.uint8)  # the kernel's uint8 side, in [1, 255]
        dots = self._run(shifted, self.codes_t) - self.offsets  # (Q, G) int32: sum of Q C, exact
        if q.shape[1] * QUERY_LEVELS * GALLERY_LEVELS >= EXACT_IN_FLOAT32:
            dots = dots.astype(np.float64)
        factor = (2.0 * q_scale * self.scale).astype(np.float32)  # (Q, 1)
        d = q_sq[:, None] + g_sq[None, :]
        d -= factor * dots
        np.maximum(d, 0.0, out=d)
        q_l1 = (np.abs(q_codes).sum(axis=1, dtype=np.float64) * q_scale[:, 0])  # ||sq Q||_1, (Q,)
        bound = self.scale / 2 * q_l1 + q_scale[:, 0] / 2 * self.l1_max
        return d.astype(np.float32, copy=False), 4.0 * bound


@lru_cache(maxsize=1)
def _matmul_integer() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """onnxruntime's MatMulInteger kernel as a function (built once, on first use): (Q, D) uint8 times (D, G) int8
    -> (Q, G) int32, the exact sums of the products. One thread, as identify's float32 pass (docs/benchmarks.md)."""
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph(
        [node],
        "int8_dots",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["Q", "D"]),
         helper.make_tensor_value_info("b", TensorProto.INT8, ["D", "G"])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["Q", "G"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda a, b: session.run(None, {"a": a, "b": b})[0]
