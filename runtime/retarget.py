"""Fixed-size YOLOv8 exports re-targeted to another input size: the anchor grid rewritten, every weight kept."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

# The anchor strides of Ultralytics' detection heads: P3-P5 (YOLOv8, YOLO11) and P3-P6 (the -p6 models).
STRIDE_SETS = ((8, 16, 32), (8, 16, 32, 64))


class NotRetargetable(ValueError):
    """The graph is not a fixed-size YOLOv8-style detector whose anchor grid can be rewritten; says why."""


def anchor_grid(size: tuple[int, int], strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The anchor points of a YOLOv8 head for an input of size (H, W), multiples of strides[-1].

    Returns (points (2, N) float32: cell centers in grid units, x row then y row, level by level, each level
    row-major; steps (N,) float32: each point's stride), N = sum of (H / s) * (W / s).
    """
    points, steps = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(size[0] // s), np.arange(size[1] // s), indexing="ij")
        points.append(np.stack([gx.ravel(), gy.ravel()]) + 0.5)
        steps.append(np.full(gx.size, s))
    return np.concatenate(points, 1).astype(np.float32), np.concatenate(steps).astype(np.float32)


def fixed_geometry(model: onnx.ModelProto) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The input size (H, W) a fixed-size detector was exported at and the strides its N anchors imply.

    The graph must take one (1, 3, H, W) input and give one (1, 4 + classes, N) output, all dims fixed.
    Raises NotRetargetable saying which part differs.
    """
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise NotRetargetable(f"{len(inputs)} inputs and {len(graph.output)} outputs, not one of each")
    shape_in, shape_out = _dims(inputs[0]), _dims(graph.output[0])
    if len(shape_in) != 4 or not all(isinstance(d, int) for d in shape_in) or shape_in[:2] != [1, 3]:
        raise NotRetargetable(f"its input {shape_in} is not a fixed (1, 3, H, W)")
    if len(shape_out) != 3 or not isinstance(shape_out[2], int) or shape_out[0] != 1:
        raise NotRetargetable(f"its output {shape_out} is not a fixed (1, 4 + classes, anchors)")
    size = (shape_in[2], shape_in[3])
    for strides in STRIDE_SETS:
        if size[0] % strides[-1] == 0 and size[1] % strides[-1] == 0 and _count(size, strides) == shape_out[2]:
            return size, strides
    raise NotRetargetable(f"its {shape_out[2]} anchors match no stride set {STRIDE_SETS} at {size[0]}x{size[1]}")


def retarget(data: bytes, size: tuple[int, int]) -> bytes:
    """A fixed-size YOLOv8 ONNX export (Ultralytics' own, plain or simplified) as the same network for inputs of
    size (H, W), multiples of the largest stride: what Ultralytics would have exported at that size.

    Every tensor that depends on the input size is found by value and rewritten: the anchor points (1, 2, N) and
    strides (1, N) and the reshape targets ending in N. Any other tensor involving N raises NotRetargetable,
    so a graph is rewritten only where each change is understood.
    """
    model = onnx.load_from_string(data)
    old_size, strides = fixed_geometry(model)
    if size[0] % strides[-1] or size[1] % strides[-1] or min(size) < strides[-1]:
        raise NotRetargetable(f"{size[0]}x{size[1]} is not made of multiples of its largest stride {strides[-1]}")
    _rewrite(model, old_size, size, strides)
    return model.SerializeToString()


def retargetable(data: bytes) -> tuple[int, ...]:
    """The anchor strides of a fixed-size YOLOv8 export that retarget can rewrite (every size-dependent tensor
    understood); raises NotRetargetable saying why it cannot."""
    model = onnx.load_from_string(data)
    size, strides = fixed_geometry(model)
    _rewrite(model, size, (size[0], size[1] + strides[-1]), strides)
    return strides


def _rewrite(model: onnx.ModelProto, old_size: tuple[int, int], size: tuple[int, int], strides: tuple[int, ...]
             ) -> None:
    """Rewrite model (in place) from old_size to size: grid tensors, input and output dims, no stale shapes."""
    graph = model.graph
    n0, n = _count(old_size, strides), _count(size, strides)
    old, new = anchor_grid(old_size, strides), anchor_grid(size, strides)
    shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape" and len(node.input) > 1}
    found = 0
    for tensor, name in _tensors(graph):
        value = numpy_helper.to_array(tensor)
        if n0 not in value.shape and not (value.ndim == 1 and value.dtype == np.int64 and n0 in value.tolist()):
            continue
        tensor.CopyFrom(numpy_helper.from_array(_replacement(value, name in shapes, n0, n, old, new), tensor.name))
        found += 1
    if not found:
        raise NotRetargetable("no anchor grid was found in the graph")
    _set_dims(graph.input[[i.name for i in graph.input].index(_data_input(graph))], [1, 3, *size])
    _set_dims(graph.output[0], [*_dims(graph.output[0])[:2], n])
    del graph.value_info[:]  # shapes recorded for the old size: onnxruntime infers them again


def _replacement(value: np.ndarray, is_shape: bool, n0: int, n: int, old: tuple[np.ndarray, np.ndarray],
                 new: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The tensor for the new size, or NotRetargetable when value is not one of the grid's own tensors."""
    if is_shape and value.ndim == 1 and value.dtype == np.int64 and value[-1] == n0 and n0 not in value[:-1]:
        return np.concatenate([value[:-1], [n]]).astype(np.int64)
    (points0, steps0), (points, steps) = old, new
    if value.shape[-2:] == points0.shape and np.array_equal(value.reshape(points0.shape), points0):
        return points.reshape(*value.shape[:-2], *points.shape).astype(value.dtype)
    if value.shape[-1:] == steps0.shape and np.array_equal(value.reshape(steps0.shape), steps0):
        return steps.reshape(*value.shape[:-1], *steps.shape).astype(value.dtype)
    raise NotRetargetable(f"a constant of shape {tuple(value.shape)} depends on the {n0} anchors but is not their "
                          "grid, strides or a reshape target")


def _tensors(graph: onnx.GraphProto) -> list[tuple[onnx.TensorProto, str]]:
    """Every constant of the graph with the name it feeds: initializers and Constant nodes' values."""
    out = [(t, t.name) for t in graph.initializer]
    for node in graph.node:
        out += [(a.t, node.output[0]) for a in node.attribute if node.op_type == "Constant" and a.name == "value"]
    return out


def _data_input(graph: onnx.GraphProto) -> str:
    names = {t.name for t in graph.initializer}
    return next(i.name for i in graph.input if i.name not in names)


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def _set_dims(value: onnx.ValueInfoProto, dims: list[int]) -> None:
    for dim, v in zip(value.type.tensor_type.shape.dim, dims, strict=True):
        dim.Clear()
        dim.dim_value = int(v)


def _count(size: tuple[int, int], strides: tuple[int, ...]) -> int:
    return sum((size[0] // s) * (size[1] // s) for s in strides)
