"""PyTorch eager sessions over an edgekit checkpoint: the reference every exported artifact is compared with.

CUDA FP16 where a GPU exists (`cuda_fp16=True`); otherwise CPU FP32 with an explicit thread count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import Runtime, RuntimeUnavailable, register


def session(path: str | Path, runtime: str, threads: int | None, xnnpack: bool) -> TorchSession:
    return TorchSession(path, threads=threads, cuda_fp16=runtime == "torch-cuda-fp16")


# Not carried to devices: it reads edgekit checkpoints through edgekit.models, which needs the whole package.
register(*(Runtime(name, "torch", "pytorch", (".safetensors",), gpu, ("torch",), ("torch",), session, text,
                   device_side=False)
           for name, gpu, text in (("torch", False, "PyTorch eager, CPU"),
                                   ("torch-cuda-fp16", True, "PyTorch eager, CUDA, FP16 weights and activations"))))


class TorchSession:
    def __init__(self, path: str | Path, threads: int | None = 1, cuda_fp16: bool = False):
        import torch

        from ..models.checkpoint import load_checkpoint

        if cuda_fp16 and not torch.cuda.is_available():
            raise RuntimeUnavailable("torch-cuda-fp16 needs a CUDA GPU; torch.cuda.is_available() is False here")
        if threads and not cuda_fp16:
            torch.set_num_threads(threads)
        self.torch = torch
        model, meta = load_checkpoint(path)
        self.device = torch.device("cuda" if cuda_fp16 else "cpu")
        self.dtype = torch.float16 if cuda_fp16 else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        self.input_shape = [1, 3, meta.input_size, meta.input_size]
        self.output_names = list(meta.outputs)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, self.dtype)
            outs = self.model(x)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
        outs = outs if isinstance(outs, (tuple, list)) else [outs]
        return [o.float().cpu().numpy() for o in outs]
