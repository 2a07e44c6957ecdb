"""INT8 stage, quantization-aware: fine-tune with fake quantization and KD, then export QDQ like PTQ does.

BatchNorm is folded into the convolutions first, because the exported model has it folded, so the weights that
train under fake quantization are the weights that get quantized. Weights use the exporter's grid (per-channel
symmetric int8) and activations a per-tensor EMA range; gradients pass straight through. The trained float
model then goes through the PTQ path (ORT QDQ, calibration on the trained model, float fallback), so QAT and
PTQ artifacts have one structure and one set of checks.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..config.base import DistillLoss
from ..convert.onnx import export_onnx
from ..train import distributed
from ..train.kd import kd_step
from ..train.loop import fit, fit_config
from .context import StageContext
from .quantize import QatReport, QuantScheme, run_ptq

if TYPE_CHECKING:  # annotations only: the stage file imports this module to run it
    from .stages.quantize import QuantizeConfig


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair inside nn.Sequential containers into the conv (eval statistics)."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module._modules.items())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):  # neighbours
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                module._modules[name_a] = fuse_conv_bn_eval(a, b)
                module._modules[name_b] = nn.Identity()
    return model


class ActivationFakeQuant(nn.Module):
    """Per-tensor fake quantization with an EMA min/max range (frozen once training ends)."""

    def __init__(self, symmetric: bool, momentum: float = 0.05):
        super().__init__()
        self.symmetric, self.momentum = symmetric, momentum
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            lo, hi = x.detach().min(), x.detach().max()
            first = torch.isinf(self.lo)
            self.lo.copy_(torch.where(first, lo, self.lo + self.momentum * (lo - self.lo)))
            self.hi.copy_(torch.where(first, hi, self.hi + self.momentum * (hi - self.hi)))
        if torch.isinf(self.lo):
            return x
        if self.symmetric:
            scale = (torch.maximum(self.lo.abs(), self.hi.abs()) / 127.0).clamp_min(1e-8)
            return torch.fake_quantize_per_tensor_affine(x, scale, torch.tensor(0, dtype=torch.int32), -128, 127)
        lo, hi = torch.clamp(self.lo, max=0.0), torch.clamp(self.hi, min=0.0)
        scale = ((hi - lo) / 255.0).clamp_min(1e-8)
        zero = torch.clamp(torch.round(-lo / scale), 0, 255).to(torch.int32)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


class FakeQuantLayer(nn.Module):
    """Conv2d or Linear with fake-quantized input and per-output-channel symmetric fake-quantized weights."""

    def __init__(self, layer: nn.Module, symmetric_activations: bool):
        super().__init__()
        self.layer = layer
        self.act = ActivationFakeQuant(symmetric_activations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.layer.weight
        dims = tuple(range(1, w.dim()))
        scale = (w.detach().abs().amax(dim=dims) / 127.0).clamp_min(1e-8)
        wq = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -128, 127)
        x = self.act(x)
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            return nn.functional.conv2d(x, wq, c.bias, c.stride, c.padding, c.dilation, c.groups)
        return nn.functional.linear(x, wq, self.layer.bias)


def insert_fake_quant(model: nn.Module, symmetric_activations: bool) -> nn.Module:
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(module, child_name, FakeQuantLayer(child, symmetric_activations))
    return model


def strip_fake_quant(model: nn.Module) -> nn.Module:
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, FakeQuantLayer):
                setattr(module, child_name, child.layer)
    return model


def run_qat(model: nn.Module, cfg: QuantizeConfig, scheme: QuantScheme, ctx: StageContext, out_dir: Path,
            onnx_meta: dict):
    reference = copy.deepcopy(model).eval()
    qat_model = insert_fake_quant(fold_batchnorm(copy.deepcopy(model)), scheme.symmetric_activations)
    for p in qat_model.parameters():  # the input may come frozen (the teacher, in a quantize-only recipe)
        p.requires_grad_(True)
    step = kd_step(reference, DistillLoss(features=0.0), float(ctx.input_size), view=ctx.canonical)
    batches = ctx.data.train_batches(cfg.qat.batch_size, cfg.qat.steps_per_epoch, distributed.init())
    ft = fit_config(cfg.qat, ctx.seed)
    ft.channels_last = False
    result = fit(qat_model, ft, batches, step, ctx.scoring.validate, description="QAT", progress=ctx.progress)
    trained = strip_fake_quant(qat_model).eval()
    fp32 = export_onnx(trained, out_dir / "model.qat-fp32.onnx", ctx.input_shape, ctx.output_names, onnx_meta)
    artifact, report = run_ptq(fp32, cfg, scheme, ctx, out_dir)
    report.qat = QatReport(fp32_onnx=fp32, val_nme_fake_quant=result.best_metrics.get("nme"),
                           best_epoch=result.best_epoch, history=result.history)
    return artifact, report

