"""edgepipe runtime: onnxruntime sessions, preprocessing and model metadata (numpy, OpenCV, onnxruntime; no torch)."""
