"""One epoch of training or evaluation, and the fit loop.

* `fit`: lesson 1's loop with precision (`helpers.precision`), progress and record keeping
  added; `run_epoch`: one timed pass of it; `epoch_line`: the line it prints per epoch;
  `train_epoch`, `evaluate`, `loss_and_correct`: lesson 1's own cells (`helpers.lessons`,
  generated from the notebook), re-exported here.

Predicting new text: `helpers.inference`.

Seeds and deterministic algorithms: `helpers.reproducibility`; the device and what decides
the digits: `helpers.hardware`; the precision rule: `helpers.precision`.

Binary models return one logit per example ([batch, 1]) and train with
BCEWithLogitsLoss; multi-class models return [batch, n_classes] for CrossEntropyLoss.
Lesson 1's `loss_and_correct` tells them apart by the logits' last dimension.
"""
from __future__ import annotations

import copy
import os
import time

import torch
from torch import nn

from .lessons import evaluate, loss_and_correct, train_epoch  # noqa: F401  (lesson 1's cells)
from .precision import AutocastForward, gradient_scaler, training_precision
from .progress import progress


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

