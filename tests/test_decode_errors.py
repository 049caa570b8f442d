"""YOLO decoders refuse bad input with a UserError that names the argument, what was expected and what came."""

import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode, decode_course, decode_yolov5, decode_yolov8
from tests.decode_refs import GRID_ANCHORS

T1 = [Transform.identity((64, 64))]
Z8 = np.zeros((1, 8, 2, 2), np.float32)  # a course output, A = 1, C = 3
ONE = [(1.0, 1.0)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # unknown head name: the known ones are listed
        (lambda: decode("ssd", np.zeros((1, 6, 4)), T1), r"head must be one of \('yolo-course', 'yolov5', 'yolov8'"),
        # course head without anchors
        (lambda: decode("yolo-course", Z8, T1), r"anchors must be given as an \(A, 2\) array"),
        # anchors for a head that has none
        (lambda: decode("yolov8", np.zeros((1, 6, 4)), T1, anchors=ONE), r"anchors belong to the yolo-course head"),
        # a course layout for another head
        (lambda: decode("yolov5", np.zeros((1, 4, 6)), T1, layout="cells"), r"layout=.cells. for head .yolov5."),
        # unknown layout
        (lambda: decode_course(Z8, T1, ONE, layout="nhwc"), r"layout must be one of \('channels', 'cells'\)"),
        # the channels layout given a 5-D output
        (lambda: decode_course(np.zeros((1, 2, 2, 1, 8)), T1, ONE), r"\(B, A\*\(5\+C\), S_h, S_w\), a 4-D array"),
        # channel count not a multiple of the anchors
        (lambda: decode_course(np.zeros((1, 10, 2, 2)), T1, GRID_ANCHORS), r"10 channels is not a multiple of 3"),
        # channels for A = 3 anchors but no class (5 per anchor)
        (lambda: decode_course(np.zeros((1, 15, 2, 2)), T1, GRID_ANCHORS), r"with C >= 1, but got .*so C = 0"),
        # the cells layout with the wrong anchor count
        (lambda: decode_course(np.zeros((1, 2, 2, 2, 8)), T1, GRID_ANCHORS, layout="cells"), r"A = 3 anchors on axis"),
        # class_names that do not match the course output's classes
        (lambda: decode_course(Z8, T1, ONE, class_names=("a",)), r"C = 1 \(the number of class_names\).*so C = 3"),
        # bad anchor units
        (lambda: decode_course(Z8, T1, ONE, anchor_units="m"), r"anchor_units must be one of \('grid', 'pixels'\)"),
        # a negative anchor
        (lambda: decode_course(Z8, T1, [(-1.0, 2.0)]), r"anchors must hold finite sizes > 0, but row 0 is \[-1.0, 2"),
        # anchors not (A, 2)
        (lambda: decode_course(Z8, T1, [1.0, 2.0]), r"anchors must be an \(N, 2\) array .* got shape \(2,\)"),
        # YOLOv8 output given transposed, (B, K, 4+C): C does not match class_names, the layout is named
        (lambda: decode_yolov8(np.zeros((1, 10, 7)), T1, class_names=("a", "b", "c")), r"\(B, 4\+C, K\) with C = 3"),
        # YOLOv8 without class rows
        (lambda: decode_yolov8(np.zeros((1, 4, 9)), T1), r"\(B, 4\+C, K\) with C >= 1, but got shape \(1, 4, 9\)"),
        # YOLOv8 with a wrong rank
        (lambda: decode_yolov8(np.zeros((6, 4)), T1), r"\(B, 4\+C, K\), a 3-D array, but got shape \(6, 4\)"),
        # YOLOv5 without a class column
        (lambda: decode_yolov5(np.zeros((1, 3, 5)), T1), r"\(B, K, 5\+C\) with C >= 1"),
        # YOLOv5 with class_names that do not match
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), T1, class_names=("a",)), r"\(B, K, 5\+C\) with C = 1"),
        # a negative width: a wrong layout or head
        (lambda: decode_yolov5(np.array([[[8, 8, -4, 4, 0.9, 0.9]]]), T1), r"w, h >= 0, but got a negative size"),
        # NaN in the model output
        (lambda: decode_yolov8(np.full((1, 6, 4), np.nan), T1), r"outputs must be finite, but got NaN or inf"),
        # inf in the course output
        (lambda: decode_course(np.where(Z8 == 0, np.inf, 0), T1, ONE), r"outputs must be finite"),
        # an integer output
        (lambda: decode_yolov8(np.zeros((1, 6, 4), np.int32), T1), r"float16, float32 or float64 .*got dtype int32"),
        # one transform for two images
        (lambda: decode_yolov8(np.zeros((2, 6, 4)), T1), r"one Transform per image \(2\), but got 1"),
        # something else than a Transform
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), [(64, 64)]), r"transforms\[0\] must be a Transform, but got tuple"),
        # conf_threshold above 1
        (lambda: decode_yolov8(np.zeros((1, 6, 4)), T1, conf_threshold=1.5), r"conf_threshold must be in \[0, 1\]"),
        # conf_threshold negative, checked even for an empty batch
        (lambda: decode_yolov8(np.zeros((0, 6, 4)), [], conf_threshold=-0.1), r"conf_threshold must be in \[0, 1\]"),
        # iou_threshold not a number
        (lambda: decode_course(Z8, T1, ONE, iou_threshold="high"), r"iou_threshold must be a number in \[0, 1\]"),
        # max_det 0
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), T1, max_det=0), r"max_det must be an int >= 1, but got 0"),
        # max_det not an int
        (lambda: decode("yolov5", np.zeros((1, 3, 7)), T1, max_det=2.5), r"max_det must be an int >= 1"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
