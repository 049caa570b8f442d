"""ONNX export: the exported graph, its metadata, parity checks, fp16, int8 and NMS inside the graph."""
