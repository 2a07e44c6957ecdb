"""Compression stages: distill and prune turn a model into a model; quantize and fp16 turn a float ONNX file
into another. Each returns what it made plus a dict for the run's manifest."""
