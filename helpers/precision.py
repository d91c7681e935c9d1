"""The precision training runs in: the one rule, and the pieces that apply it.

* `training_precision`: "bf16" where the hardware computes bfloat16 natively
  (`helpers.hardware.native_bf16`), "fp16" with a gradient scaler on older CUDA GPUs, "fp32"
  elsewhere; or the precision asked for;
* `needs_gradient_scaler`, `gradient_scaler`, `describe_precision`: float16's loss scaling;
* `autocast`, `AutocastForward`: a forward pass in 16 bits with float32 logits (what
  `helpers.training.fit` trains and `helpers.features` encodes with).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .hardware import native_bf16

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def training_precision(device, precision: str = "auto", **capabilities) -> str:
    """"bf16", "fp16" or "fp32": the precision the training forward pass runs in on `device`.

    `precision` "auto" picks bfloat16 mixed precision where the hardware computes it natively
    (`native_bf16`: CUDA compute capability 8.0 or newer, CPUs with AMX or AVX512-BF16; about
    1.5-2x faster for these models); float16 mixed precision with a gradient scaler on older
    CUDA GPUs (a T4 or V100: their tensor cores compute float16, and bfloat16 would only be
    emulated); float32 elsewhere (other CPUs). "bf16", "fp16" or "fp32" force it ("fp16" runs
    wherever torch's autocast has float16: CUDA, and the CPU for most layers).
    `capabilities` (`flags`, `capability`) go to `native_bf16` (tests pass mocked ones).
    The weights, the optimizer and every evaluation stay float32. The frozen encoder of
    lesson 6 runs in the same precision (one rule).
    """
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, not {precision!r}")
    if precision != "auto":
        return precision
    if native_bf16(device, **capabilities):
        return "bf16"
    return "fp16" if torch.device(device).type == "cuda" else "fp32"


def needs_gradient_scaler(precision: str) -> bool:
    """Whether training in `precision` scales its loss: float16's smallest normal number is about 6e-5, so
    small gradients would round to zero without it; bfloat16 has float32's range and needs no scaling."""
    return precision == "fp16"


def gradient_scaler(device, precision: str) -> torch.amp.GradScaler | None:
    """A fresh `torch.amp.GradScaler` for `device` when `precision` needs one (`needs_gradient_scaler`), else None.

    The scaler multiplies the loss by a large factor before `backward` (so small float16 gradients
    survive), divides the gradients back before the optimizer's step, skips a step whose
    gradients overflowed (inf or NaN) and adapts the factor: halved after an overflow, doubled
    after 2,000 steps without one."""
    return torch.amp.GradScaler(torch.device(device).type) if needs_gradient_scaler(precision) else None


def describe_precision(precision: str) -> str:
    """The precision in words for a run's first line: "bf16", "fp32", "fp16 with a gradient scaler"."""
    return f"{precision} with a gradient scaler" if needs_gradient_scaler(precision) else precision


def autocast(device, precision: str):
    """A context that runs matrix products in 16 bits when `precision` is "bf16" or "fp16" (torch's
    autocast: bfloat16 or float16), else does nothing."""
    if precision in ("bf16", "fp16"):
        return torch.autocast(torch.device(device).type,
                              dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


class AutocastForward(nn.Module):
    """`model` with its forward pass under `autocast(device, precision)`, returning float32 logits.

    What `fit` hands lesson 1's `train_epoch` to train in bfloat16 or float16 mixed precision: the
    matrix products run in 16 bits, while the loss (`train_epoch` computes it on these float32
    logits), the gradients' accumulation and the weights stay float32. `train()` / `eval()`
    reach `model` (a submodule); its state_dict keys gain a "model." prefix.
    """

    def __init__(self, model: nn.Module, device, precision: str):
        super().__init__()
        self.model = model
        self.device = torch.device(device)
        self.precision = precision

    def forward(self, *inputs):
        with autocast(self.device, self.precision):
            logits = self.model(*inputs)
        return logits.float()
