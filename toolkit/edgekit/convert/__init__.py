"""Model-format conversions shared by the compress and export rooms (PyTorch -> ONNX, ONNX FP32 -> FP16).

It sits below both, so imports only point down: compress and export use it; it uses neither."""
