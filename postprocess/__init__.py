"""Postprocessing in numpy: box formats, IoU, NMS, YOLO decoding, anchor boxes, embedding comparison."""
