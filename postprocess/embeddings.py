"""Embedding comparison for Siamese / FaceNet encoders: distances, 1:1 verify, 1:K identify."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.quantized import INT8_MIN_ROWS, Int8Rows

DISTANCES = ("squared_l2", "cosine")
UNKNOWN = "unknown"
NORM_EPS = 1e-12  # norms are clamped at this: a zero vector has cosine distance 1 to everything
# Below this many queries at once the (Q, G) dot products use numpy's einsum (one thread, SIMD), else matmul
# (OpenBLAS, threaded): matmul's threads win on an idle machine but lose several times over when other processes
# hold the cores, and for a few queries einsum is ahead even then. Chosen by measurement (benchmarks/identify.py,
# "dot products"; docs/benchmarks.md, "Identify: 1:K over 128-d galleries").
EINSUM_MAX_QUERIES = 4
QUERY_CHUNK = 64  # identify scores this many queries at a time: a (64, G) float32 block, 25 MB for G = 100,000


@dataclass(frozen=True)
class Verification:
    """1:1 verification of two embeddings: match when distance <= threshold (distance in the metric's units)."""

    distance: float
    match: bool
    threshold: float
    metric: str


@dataclass(frozen=True)
class Identification:
    """1:K identification of one query: the k nearest gallery rows, distances ascending (ties by gallery row).

    label: labels[0], or "unknown" when distances[0] > threshold or the gallery is empty.
    distance: distances[0], or inf for an empty gallery. indices: the gallery rows of labels / distances.
    """

    label: str
    distance: float
    labels: tuple[str, ...]
    distances: tuple[float, ...]
    indices: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Gallery:
    """Enrolled embeddings for repeated 1:K search: validated once, copied read-only, squared norms precomputed.

    embeddings: (G, D) float array (G may be 0). quantize: keep an int8 copy for identify's first pass with the
    squared L2 distance (None: from quantized.INT8_MIN_ROWS rows). After construction: embeddings (G, D) float32
    read-only, sq_norms (G,) float32 ||g||^2, max_sq_norm their maximum (0 when G = 0), int8 the copy or None.
    Build it once at enrolment and pass it to identify instead of the array.
    """

    embeddings: np.ndarray
    quantize: bool | None = None
    sq_norms: np.ndarray = field(init=False, repr=False)
    max_sq_norm: float = field(init=False, repr=False)
    int8: Int8Rows | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        arr = np.array(_as_embeddings(self.embeddings, "gallery", ndim=2), dtype=np.float32)  # always a copy
        arr.flags.writeable = False
        sq_norms = _sq_norms(arr, "gallery")
        sq_norms.flags.writeable = False
        object.__setattr__(self, "embeddings", arr)
        object.__setattr__(self, "sq_norms", sq_norms)
        object.__setattr__(self, "max_sq_norm", float(sq_norms.max(initial=0.0)))
        quantize = len(arr) >= INT8_MIN_ROWS if self.quantize is None else self.quantize
        object.__setattr__(self, "int8", Int8Rows.of(arr) if quantize and len(arr) else None)

    def __len__(self) -> int:
        return len(self.embeddings)


def _as_embeddings(x: np.ndarray, name: str, ndim: int, dtype: type = np.float32) -> np.ndarray:
    """Check embeddings: (D,) for ndim 1, (N, D) for ndim 2, D >= 1, real numbers, finite. Returns them as dtype
    (a copy only when the dtype changes; never written to)."""
    arr = np.asarray(x)
    shape = "(D,)" if ndim == 1 else "(N, D)"
    if arr.ndim != ndim or arr.shape[-1] == 0:
        raise UserError(f"{name} must have shape {shape} with D >= 1, but got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"{name} must be a float or integer array, but got dtype {arr.dtype}")
    out = arr.astype(dtype, copy=False)
    if not np.isfinite(out).all():
        raise UserError(f"{name} must be finite, but got NaN or inf")
    return out


def _sq_norms(x: np.ndarray, name: str) -> np.ndarray:
    """x: (N, D) float32 finite. Returns (N,) float32 ||x||^2, raising when it overflows float32."""
    sq = np.einsum("nd,nd->n", x, x)
    if not np.isfinite(sq).all():
        raise UserError(f"{name} must have norms below 1.8e19 (float32 range), but got an overflowing row")
    return sq


def _check_metric(metric: str) -> None:
    if metric not in DISTANCES:
        raise UserError(f"metric must be one of {DISTANCES}, but got {metric!r}")


def _check_same_size(queries: np.ndarray, gallery: np.ndarray, q_name: str, g_name: str) -> None:
    if queries.shape[-1] != gallery.shape[-1]:
        raise UserError(
            f"{g_name} must have embedding size D = {queries.shape[-1]} like {q_name}, but got {gallery.shape[-1]}"
        )


def _check_threshold(threshold: float) -> float:
    is_number = isinstance(threshold, (int, float, np.integer, np.floating)) and not isinstance(threshold, bool)
    if not (is_number and math.isfinite(threshold) and threshold >= 0):
        raise UserError(f"threshold must be a finite number >= 0, but got {threshold!r}")
    return float(threshold)


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = NORM_EPS) -> np.ndarray:
    """x / max(||x||, eps) along axis: unit vectors, zero vectors stay zero.

    x: (..., D) float or integer, finite. Returns: float32 array of x's shape, new (x is not changed). The norm is
    computed in float64, so large values do not overflow.
    """
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"x must be a float or integer array, but got dtype {arr.dtype}")
    if not eps > 0:
        raise UserError(f"eps must be > 0, but got {eps!r}")
    x64 = arr.astype(np.float64)
    if not np.isfinite(x64).all():
        raise UserError("x must be finite, but got NaN or inf")
    return (x64 / np.maximum(np.linalg.norm(x64, axis=axis, keepdims=True), eps)).astype(np.float32)


def _dot(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """q: (Q, D) float32, g: (G, D) float32. Returns (Q, G) float32 dot products (see EINSUM_MAX_QUERIES)."""
    if len(q) < EINSUM_MAX_QUERIES:
        return np.einsum("qd,gd->qg", q, g)
    return q @ g.T


def _fast_distances(q: np.ndarray, q_sq: np.ndarray, g: np.ndarray, g_sq: np.ndarray, metric: str) -> np.ndarray:
    """All query-gallery distances from one matrix product, in float32.

    q: (Q, D), q_sq: (Q,) ||q||^2, g: (G, D), g_sq: (G,) ||g||^2, all float32. Returns: (Q, G) float32.
    squared_l2 = ||q||^2 + ||g||^2 - 2 q.g clamped at 0; cosine = 1 - q.g / (||q|| ||g||) clamped to [0, 2].
    The absolute error is at most (D + 4) * eps32 * (||q||^2 + ||g||^2) for squared L2 and (D + 4) * eps32 for
    cosine (see _fast_error_margin): for unit vectors of D = 128 at most 1.6e-5, typically 1e-7, even where q
    and g nearly coincide and the difference cancels.
    """
    dot = _dot(q, g)  # (Q, G)
    if metric == "cosine":
        q_norm = np.maximum(np.sqrt(q_sq), NORM_EPS)[:, None]
        g_norm = np.maximum(np.sqrt(g_sq), NORM_EPS)[None, :]
        return np.clip(1.0 - dot / q_norm / g_norm, 0.0, 2.0)
    d = q_sq[:, None] + g_sq[None, :]
    d -= 2.0 * dot
    return np.maximum(d, 0.0, out=d)


def _exact_distances(q: np.ndarray, rows: np.ndarray, metric: str) -> np.ndarray:
    """Distances of one query to a few rows, in float64 from the differences themselves (no cancellation).

    q: (D,) float, rows: (K, D) float. Returns: (K,) float64.
    """
    q64, r64 = q.astype(np.float64)[None, :], rows.astype(np.float64)  # (1, D), (K, D): one kernel for both
    if metric == "cosine":
        q_norm, r_norms = (np.maximum(np.sqrt(np.einsum("kd,kd->k", x, x)), NORM_EPS) for x in (q64, r64))
        return np.clip(1.0 - np.einsum("kd,kd->k", r64, q64) / (r_norms * q_norm), 0.0, 2.0)
    diff = r64 - q64  # (K, D)
    return np.einsum("kd,kd->k", diff, diff)


def distance_matrix(queries: np.ndarray, gallery: np.ndarray, metric: str = "squared_l2") -> np.ndarray:
    """Distances between every query and every gallery row.

    queries: (Q, D) float, gallery: (G, D) float, finite (Q or G may be 0). metric: "squared_l2" (the course's
    d(x1, x2) = ||f(x1) - f(x2)||^2) or "cosine" (1 - cos, in [0, 2]). Returns: (Q, G) float32, >= 0.
    Computed as ||q||^2 + ||g||^2 - 2 q.g in float32: absolute error at most (D + 4) * eps32 * (||q||^2 + ||g||^2)
    (1.6e-5 for unit vectors of D = 128, typically 1e-7); distance() is exact in float64.
    """
    _check_metric(metric)
    q = _as_embeddings(queries, "queries", ndim=2)
    g = _as_embeddings(gallery, "gallery", ndim=2)
    _check_same_size(q, g, "queries", "gallery")
    return _fast_distances(q, _sq_norms(q, "queries"), g, _sq_norms(g, "gallery"), metric)


def distance(a: np.ndarray, b: np.ndarray, metric: str = "squared_l2") -> float:
    """Distance between two embeddings a: (D,), b: (D,) float, finite; computed in float64 from a - b.

    metric: "squared_l2" (||a - b||^2) or "cosine" (1 - cos, in [0, 2]; norms are clamped at 1e-12, so a zero
    vector is at distance 1 from everything).
    """
    _check_metric(metric)
    a64, b64 = _as_embeddings(a, "a", ndim=1, dtype=np.float64), _as_embeddings(b, "b", ndim=1, dtype=np.float64)
    _check_same_size(a64, b64, "a", "b")
    return float(_exact_distances(a64, b64[None, :], metric)[0])


def verify(a: np.ndarray, b: np.ndarray, threshold: float, metric: str = "squared_l2") -> Verification:
    """1:1 face verification: is b the same person as a? a, b: (D,) embeddings; match when distance <= threshold."""
    t = _check_threshold(threshold)
    d = distance(a, b, metric)
    return Verification(d, d <= t, t, metric)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k must be an integer >= 1, but got {k!r}")
    return int(k)


def _fast_error_margin(q_sq: np.ndarray, g: Gallery, metric: str) -> np.ndarray:
    """How far apart two rows' _fast_distances to one query can be from their exact order, per query.

    q_sq: (Q,) float32 ||q||^2. Returns: (Q,) float64. A float32 dot product over D terms errs by at most
    D * eps/2 * ||q|| ||g|| (any summation order), the norms likewise; with the few roundings around them one
    fast distance errs by at most (D + 4) * eps * scale, scale = ||q||^2 + max ||g||^2 for squared L2 and 1 for
    cosine; two rows, twice that. About 3e-5 for unit vectors of D = 128 (a gallery of very unequal norms widens
    it: more candidates to recompute, the same result).
    """
    scale = q_sq.astype(np.float64) + g.max_sq_norm if metric == "squared_l2" else np.ones(len(q_sq))
    return 2.0 * (g.embeddings.shape[1] + 4) * float(np.finfo(np.float32).eps) * scale


def _candidates(d_fast: np.ndarray, k: int, margin: float) -> np.ndarray:
    """Every row that may be among the exact k nearest. d_fast: (G,) float32 fast distances of one query.

    Returns: (>= min(k, G),) int64 rows whose fast distance is within margin of the k-th smallest; an exact
    recomputation then orders them. d_fast.min() serves the usual k = 1, much faster than np.partition over a large
    gallery (docs/benchmarks.md, "Identify: 1:K over 128-d galleries").
    """
    if k >= len(d_fast):
        return np.arange(len(d_fast))
    kth = d_fast.min() if k == 1 else np.partition(d_fast, k - 1)[k - 1]
    return np.flatnonzero(d_fast <= kth + margin)


def _nearest(
    q: np.ndarray,
    d_fast: np.ndarray,
    margin: float,
    g: Gallery,
    labels: Sequence[str],
    threshold: float,
    k: int,
    metric: str,
) -> Identification:
    """One query's result. q: (D,) float32; d_fast: (G,) float32 fast distances to the gallery, G >= 1; margin:
    _fast_error_margin's bound for this query.

    The candidates are recomputed exactly in float64, so the k nearest, their order (ties by gallery row), the
    distances and the threshold test are those of a float64 brute force over the whole gallery, like verify().
    """
    cand = _candidates(d_fast, k, margin)
    exact = _exact_distances(q, g.embeddings[cand], metric)
    order = np.lexsort((cand, exact))[:k]  # ascending distance, ties by gallery row
    rows, dists = cand[order], exact[order]
    names = tuple(str(labels[int(i)]) for i in rows)
    best = float(dists[0])
    return Identification(
        names[0] if best <= threshold else UNKNOWN,
        best,
        names,
        tuple(float(x) for x in dists),
        tuple(int(i) for i in rows),
    )


def identify(
    queries: np.ndarray,
    gallery: np.ndarray | Gallery,
    labels: Sequence[str],
    threshold: float,
    k: int = 1,
    metric: str = "squared_l2",
) -> list[Identification]:
    """1:K recognition: the k nearest gallery rows of each query, and its label when the nearest is close enough.

    queries: (Q, D) float. gallery: (G, D) float, or a Gallery enrolled once (faster for repeated searches); both
    are compared as float32, the reported distances computed from those values in float64.
    labels: G names, one per gallery row (a person may own several rows). threshold: >= 0, in metric units.
    k >= 1 (a k above G gives all G rows). Returns: one Identification per query, in order; an empty gallery
    makes every query "unknown" with distance inf and no candidates; empty queries give [].
    """
    _check_metric(metric)
    t, k = _check_threshold(threshold), _check_k(k)
    g = gallery if isinstance(gallery, Gallery) else Gallery(gallery, quantize=False)  # one search: no int8 copy
    q = _as_embeddings(queries, "queries", ndim=2)
    _check_same_size(q, g.embeddings, "queries", "gallery")
    if len(labels) != len(g):
        raise UserError(f"labels must have one entry per gallery row ({len(g)}), but got {len(labels)}")
    if len(g) == 0:
        return [Identification(UNKNOWN, math.inf, (), (), ()) for _ in range(len(q))]
    q_sq = _sq_norms(q, "queries")
    results = []
    for start in range(0, len(q), QUERY_CHUNK):
        block = slice(start, start + QUERY_CHUNK)
        margins = _fast_error_margin(q_sq[block], g, metric)
        if g.int8 is not None and metric == "squared_l2":  # a quarter of the bytes to read: quantized.py
            d, widen = g.int8.distances(q[block], q_sq[block], g.sq_norms)  # (chunk, G)
            margins = margins + widen
        else:
            d = _fast_distances(q[block], q_sq[block], g.embeddings, g.sq_norms, metric)  # (chunk, G)
        results += [
            _nearest(qi, di, float(mi), g, labels, t, k, metric)
            for qi, di, mi in zip(q[block], d, margins, strict=True)
        ]
    return results
