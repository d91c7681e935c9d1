"""Reproducibility, device and precision, one epoch of training or evaluation, the fit loop, prediction.

* `make_reproducible`, `set_seed`: seeds, thread count, deterministic algorithms;
* `training_precision` (via `native_bf16`): the one precision rule, bfloat16 where the
  hardware computes it, float16 with a gradient scaler on older CUDA GPUs (`gradient_scaler`);
  `describe_hardware` / `hardware_summary`: what decides the digits;
* `fit`: lesson 1's loop with precision, progress and record keeping added; `run_epoch`: one
  timed pass of it; `train_epoch`, `evaluate`, `loss_and_correct`: lesson 1's own cells
  (`helpers.lessons`, generated from the notebook), re-exported here;
* `probabilities`, `predict`: new text.

Binary models return one logit per example ([batch, 1]) and train with
BCEWithLogitsLoss; multi-class models return [batch, n_classes] for CrossEntropyLoss.
Lesson 1's `loss_and_correct` tells them apart by the logits' last dimension.
"""
from __future__ import annotations

import contextlib
import copy
import os
import platform
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .lessons import evaluate, loss_and_correct, train_epoch  # noqa: F401  (lesson 1's cells)
from .progress import progress
from .text import Tokenizer, Vocab, encode_batch


PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")   # CPU instructions that compute bfloat16 natively
CUDA_BF16_CAPABILITY = (8, 0)                  # Ampere: the first GPUs with bfloat16 tensor cores
VERSIONED_PACKAGES = ("torch", "numpy", "spacy", "transformers", "onnxruntime")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_reproducible(seed: int, threads: int | None = None) -> dict:
    """Everything that decides a run's digits besides code, data and hardware, fixed.

    Seeds Python, NumPy and torch (`set_seed`), fixes torch's intra-op thread count to
    `threads` (None keeps the current count; a different count sums in a different
    order), and switches torch to its deterministic algorithms where it has them
    (`warn_only`: an operation without one warns instead of failing). On CUDA, cuBLAS
    needs `CUBLAS_WORKSPACE_CONFIG` for that; it is set unless already set.
    The loaders seed their samplers and workers from their own `seed` argument.
    Returns {"seed", "threads"}, for the run's record.
    """
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        torch.set_num_threads(int(threads))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(seed)
    return {"seed": int(seed), "threads": torch.get_num_threads()}


def get_device(name: str = "auto") -> torch.device:
    """`"auto"` is CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _cpuinfo_value(keys: Sequence[str], cpuinfo: str | os.PathLike) -> str | None:
    """The first non-empty value of one of `keys` in /proc/cpuinfo, or None (no such line, or no file:
    macOS, Windows, a container without /proc)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and value.strip():
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str] | None:
    """The instruction-set flags of the CPU (the "flags" line on x86, "Features" on ARM), or None
    where they cannot be read."""
    value = _cpuinfo_value(("flags", "Features"), cpuinfo)
    return None if value is None else set(value.split())


def cpu_model_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name ("AMD EPYC 9R14"), from /proc/cpuinfo or, elsewhere, the platform."""
    return _cpuinfo_value(("model name",), cpuinfo) or platform.processor() or platform.machine() or "unknown"


def native_bf16(device, flags: set[str] | None = None, capability: tuple[int, int] | None = None) -> bool:
    """Whether `device` computes bfloat16 in hardware (not emulated, which is slower than float32).

    CUDA: compute capability 8.0 or newer (`capability` default: the device's). CPU: the
    AMX or AVX512-BF16 flag among `flags` (default: `cpu_flags()`; unknown means no).
    Not `torch.cuda.is_bf16_supported()` nor mkldnn's check: both answer True where
    bfloat16 is only emulated (a T4; an AVX512 CPU without BF16).
    """
    device = torch.device(device)
    if device.type == "cuda":
        capability = capability or torch.cuda.get_device_capability(device)
        return tuple(capability) >= CUDA_BF16_CAPABILITY
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        return bool(flags) and any(flag in flags for flag in BF16_CPU_FLAGS)
    return False


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


def describe_hardware(device, precision: str) -> dict:
    """What decides a run's digits besides code, data and seed, JSON-serialisable.

    {"device": "cpu" | "cuda", "name": CPU model or GPU name, "cpu_capability": torch's
    vector ISA ("AVX512", "AVX2", ...), "bf16_flags": the AMX / AVX512-BF16 flags present
    (None: flags unknown), "compute_capability": "8.0" (CUDA only), "native_bf16",
    "threads": torch's intra-op threads, "machine", "system", "precision",
    "versions": {package: version or None}}.
    """
    device = torch.device(device)
    flags = cpu_flags()
    info = {"device": device.type, "name": cpu_model_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_flags": None if flags is None else sorted(flag for flag in BF16_CPU_FLAGS if flag in flags),
            "threads": torch.get_num_threads(), "machine": platform.machine(), "system": platform.system()}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        info.update(name=torch.cuda.get_device_name(device), compute_capability=f"{major}.{minor}",
                    cpu=info["name"])
    info["native_bf16"] = native_bf16(device, flags=flags or set())
    info["precision"] = precision
    info["versions"] = {"python": platform.python_version(), **package_versions()}
    return info


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of `packages` (None where one is not installed), without importing them."""
    from importlib import metadata

    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def hardware_summary(info: dict) -> str:
    """One line from `describe_hardware`: 'cpu AMD EPYC 9R14 (AVX512, avx512_bf16), 2 threads, bf16, torch 2.13.0'."""
    if info["device"] == "cuda":
        what = f"cuda {info['name']} (compute capability {info['compute_capability']})"
    else:
        flags = "bf16 flags unknown" if info["bf16_flags"] is None else (", ".join(info["bf16_flags"])
                                                                        or "no native bf16")
        what = f"cpu {info['name']} ({info['cpu_capability']}, {flags})"
    return f"{what}, {info['threads']} threads, {info['precision']}, torch {info['versions'].get('torch')}"


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


def run_epoch(model: nn.Module, loader, criterion, device, optimizer=None, desc: str = "",
              precision: str = "fp32", scaler: torch.amp.GradScaler | None = None) -> dict:
    """One timed pass over `loader` behind a progress bar: lesson 1's `train_epoch` with the forward
    pass in `precision` (see `training_precision`) when `optimizer` is given, its loss scaled by
    `scaler` when given (float16: see `gradient_scaler`), else lesson 1's `evaluate` (float32,
    no gradients).

    Returns {"loss": mean loss per example, "accuracy": 0-1, "seconds": wall time}.
    """
    start = time.perf_counter()
    batches = progress(loader, desc or ("train" if optimizer is not None else "eval"), leave=False,
                       mininterval=5.0)
    if optimizer is not None:
        scaling = {} if scaler is None else {"scaler": scaler}   # lesson 1's cell takes it only for float16
        try:
            result = train_epoch(AutocastForward(model, device, precision), batches, optimizer, criterion, device,
                                 **scaling)
        except RuntimeError as err:
            if precision == "fp16" and torch.device(device).type == "cpu" and "primitive descriptor" in str(err):
                raise RuntimeError(
                    "training in float16 on the CPU failed: this CPU's oneDNN has no float16 kernel for one of the "
                    f"model's layers ({str(err).splitlines()[0]}); an LSTM, for one, has none. float16 is for CUDA "
                    "GPUs; on a CPU train in bf16 or fp32 (SENTIMENT_PRECISION=auto picks the right one)") from err
            raise
    else:
        result = evaluate(model, batches, criterion, device)
    return {**result, "seconds": time.perf_counter() - start}


def fit(model: nn.Module, train_loader, valid_loader, optimizer, criterion, epochs: int, device,
        checkpoint_path: str | os.PathLike | None = None, precision: str = "auto") -> list[dict]:
    """Lesson 1's loop: for `epochs`, `train_epoch` then `evaluate` on `valid_loader` (both lesson 1's
    cells, via `run_epoch`), keeping the weights with the lowest validation loss (the tutorials'
    rule), or, with `valid_loader` None, the last epoch's weights.

    What it adds to lesson 1's loop: training in `training_precision(device, precision)`
    (validation stays float32), with a gradient scaler for float16 (`gradient_scaler`: one for
    the whole run, handed to `train_epoch`), a progress bar per pass, the history and the
    printed line. After training the model holds the kept weights (also saved to
    `checkpoint_path` if given). Returns the history: one dict per epoch with train (and valid,
    None without a validation loader) loss and accuracy, epoch seconds, the precision, whether
    the epoch's weights are the ones kept so far, and for float16 "grad_scale", the scaler's
    factor at the epoch's end. Prints one line per epoch (`epoch_line`).
    """
    for name, loader in (("train_loader", train_loader), ("valid_loader", valid_loader)):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"fit: {name} has no batches (an empty split?); nothing to train or measure on")
    history, best_loss, best_state = [], float("inf"), None
    precision = training_precision(device, precision)
    scaler = gradient_scaler(device, precision)
    for epoch in range(1, epochs + 1):
        train = run_epoch(model, train_loader, criterion, device, optimizer, desc=f"epoch {epoch} train",
                          precision=precision, scaler=scaler)
        row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
               "valid_loss": None, "valid_accuracy": None, "seconds": train["seconds"], "precision": precision,
               "best": True}                        # without validation the last epoch is kept
        if scaler is not None:
            row["grad_scale"] = scaler.get_scale()
        if valid_loader is not None:
            valid = run_epoch(model, valid_loader, criterion, device, desc=f"epoch {epoch} valid")
            row.update(valid_loss=valid["loss"], valid_accuracy=valid["accuracy"],
                       seconds=train["seconds"] + valid["seconds"], best=valid["loss"] < best_loss)
            if row["best"]:
                best_loss, best_state = valid["loss"], copy.deepcopy(model.state_dict())
        if row["best"] and checkpoint_path is not None:
            torch.save(model.state_dict(), checkpoint_path)
        history.append(row)
        print(epoch_line(row), flush=True)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def epoch_line(row: dict) -> str:
    """One history row as the line `fit` prints: time, train (and valid) loss and accuracy, '*' if kept."""
    line = (f"Epoch {row['epoch']:2d} | {row['seconds']:6.1f} s | train loss {row['train_loss']:.3f} "
            f"acc {row['train_accuracy']:6.2%}")
    if row.get("valid_loss") is not None:
        line += (f" | valid loss {row['valid_loss']:.3f} acc {row['valid_accuracy']:6.2%}"
                 + (" *" if row["best"] else ""))
    return line

