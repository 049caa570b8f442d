"""The course YOLO head decoded inside the ONNX graph, then NonMaxSuppression: an end-to-end detector."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

E2E_OUTPUT = "detections"  # (K, 7): batch index, x1, y1, x2, y2 (network-input pixels), score, class id


def course_postprocess_graph(
    anchors: np.ndarray, num_classes: int, grid: tuple[int, int], input_size: tuple[int, int],
    conf: float, iou: float, max_det: int, opset: int,
) -> onnx.ModelProto:
    """raw (B, A*(5+C), S_h, S_w) -> detections (K, 7), computing what postprocess.decode_course does:
    bx = (sigmoid(tx) + col) / S_w * W, bw = anchor_w * exp(tw) * W / S_w, score = sigmoid(to) * softmax(c)[best],
    score threshold, class-aware NMS. Rows come by image, then class, then descending score; NonMaxSuppression
    caps each class of each image at max_det (the Python path caps each image at max_det: equal whenever an
    image has at most max_det detections)."""
    a, c = len(anchors), num_classes
    s_h, s_w = grid
    h_in, w_in = input_size
    n = a * s_h * s_w
    rows, cols = np.meshgrid(np.arange(s_h), np.arange(s_w), indexing="ij")
    consts = {
        "shape5": np.array([0, a, 5 + c, s_h * s_w], np.int64),
        "cell_xy": np.stack([cols.ravel(), rows.ravel()])[None, None].astype(np.float32),  # (1, 1, 2, S*S)
        "grid_scale": np.array([w_in / s_w, h_in / s_h], np.float32).reshape(1, 1, 2, 1),
        "anchor_wh": (anchors * np.array([w_in / s_w, h_in / s_h])).astype(np.float32).reshape(1, a, 2, 1),
        "half": np.array(0.5, np.float32),
        "clip_hi": np.array(20.0, np.float32),
        "box_shape": np.array([0, n, 4], np.int64),
        "score_shape": np.array([0, n, c], np.int64),
        "max_out": np.array([max_det], np.int64),
        "iou": np.array([iou], np.float32),
        "conf": np.array([np.nextafter(np.float32(conf), np.float32(-1))], np.float32),  # NMS keeps score > it
        "zero": np.array(0.0, np.float32),
        "idx_cls": np.array([1], np.int64), "idx_box": np.array([2], np.int64), "idx_batch": np.array([0], np.int64),
        "axis1": np.array([1], np.int64),
    }
    init = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    nd = helper.make_node
    init.append(numpy_helper.from_array(np.array([2, 2, 1, c], np.int64), "splits"))
    if opset >= 18:
        init.append(numpy_helper.from_array(np.array([2], np.int64), "axis1_2"))
    nodes = [
        nd("Reshape", ["raw", "shape5"], ["p"]),  # (B, A, 5+C, S*S)
        nd("Split", ["p", "splits"], ["t_xy", "t_wh", "t_o", "t_c"], axis=2),
        nd("Sigmoid", ["t_xy"], ["s_xy"]),
        nd("Add", ["s_xy", "cell_xy"], ["g_xy"]),
        nd("Mul", ["g_xy", "grid_scale"], ["center"]),  # (B, A, 2, S*S) input pixels
        nd("Min", ["t_wh", "clip_hi"], ["t_wh_c"]),
        nd("Exp", ["t_wh_c"], ["e_wh"]),
        nd("Mul", ["e_wh", "anchor_wh"], ["wh"]),
        nd("Mul", ["wh", "half"], ["half_wh"]),
        nd("Sub", ["center", "half_wh"], ["xy1"]),
        nd("Add", ["center", "half_wh"], ["xy2"]),
        nd("Concat", ["xy1", "xy2"], ["corners"], axis=2),  # (B, A, 4, S*S)
        nd("Transpose", ["corners"], ["corners_t"], perm=[0, 1, 3, 2]),  # (B, A, S*S, 4)
        nd("Reshape", ["corners_t", "box_shape"], ["boxes"]),  # (B, N, 4)
        nd("Sigmoid", ["t_o"], ["pc"]),
        nd("Softmax", ["t_c"], ["probs"], axis=2),
        nd("Mul", ["probs", "pc"], ["cls_scores"]),  # (B, A, C, S*S)
        # ReduceMax takes its axes as an input from opset 18, as an attribute before.
        nd("ReduceMax", ["cls_scores", "axis1_2"], ["best"], keepdims=1) if opset >= 18
        else nd("ReduceMax", ["cls_scores"], ["best"], keepdims=1, axes=[2]),
        nd("Equal", ["cls_scores", "best"], ["is_best"]),
        nd("Where", ["is_best", "cls_scores", "zero"], ["only_best"]),  # the best class only, like decode_course
        nd("Transpose", ["only_best"], ["sc_t"], perm=[0, 1, 3, 2]),  # (B, A, S*S, C)
        nd("Reshape", ["sc_t", "score_shape"], ["sc_n"]),  # (B, N, C)
        nd("Transpose", ["sc_n"], ["scores"], perm=[0, 2, 1]),  # (B, C, N)
        nd("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "conf"], ["sel"]),  # (K, 3) b, c, n
        nd("Gather", ["sel", "idx_batch"], ["sel_b"], axis=1),
        nd("Gather", ["sel", "idx_cls"], ["sel_c"], axis=1),
        nd("Gather", ["sel", "idx_box"], ["sel_n"], axis=1),
        nd("Concat", ["sel_b", "sel_n"], ["bn"], axis=1),
        nd("GatherND", ["boxes", "bn"], ["k_boxes"]),  # (K, 4)
        nd("GatherND", ["scores", "sel"], ["k_scores"]),  # (K,)
        nd("Unsqueeze", ["k_scores", "axis1"], ["k_scores2"]),
        nd("Cast", ["sel_b"], ["b_f"], to=TensorProto.FLOAT),
        nd("Cast", ["sel_c"], ["c_f"], to=TensorProto.FLOAT),
        nd("Concat", ["b_f", "k_boxes", "k_scores2", "c_f"], [E2E_OUTPUT], axis=1),  # (K, 7)
    ]
    graph = helper.make_graph(
        nodes, "course_postprocess",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["batch", a * (5 + c), s_h, s_w])],
        [helper.make_tensor_value_info(E2E_OUTPUT, TensorProto.FLOAT, ["K", 7])], init,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def with_nms(model: onnx.ModelProto, post: onnx.ModelProto) -> onnx.ModelProto:
    """The detector's graph followed by the postprocessing graph (output -> raw)."""
    out_name = model.graph.output[0].name
    post.ir_version = model.ir_version
    merged = compose.merge_models(model, post, io_map=[(out_name, "raw")], prefix2="post_")
    for node in merged.graph.node:  # keep the documented output name, without the merge's prefix
        node.output[:] = [E2E_OUTPUT if o == f"post_{E2E_OUTPUT}" else o for o in node.output]
    merged.graph.output[0].name = E2E_OUTPUT
    del merged.metadata_props[:]
    merged.metadata_props.extend(model.metadata_props)
    return merged
