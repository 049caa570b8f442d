"""edgepipe export: the PyTorch side (course models, data, training, evaluation, ONNX export)."""
