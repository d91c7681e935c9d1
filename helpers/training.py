"""Seeding, device choice, one epoch of training or evaluation, the fit loop and prediction.

Binary models return one logit per example ([batch, 1]) and train with
BCEWithLogitsLoss; multi-class models return [batch, n_classes] for CrossEntropyLoss.
The loop tells them apart by the logits' last dimension.
"""
from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .progress import progress
from .text import Tokenizer, Vocab, encode_batch


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def get_device(name: str = "auto") -> torch.device:
    """`"auto"` is CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def training_precision(device, precision: str | None = None) -> str:
    """"bf16" or "fp32": the precision the forward pass trains in on `device`.

    `precision` None reads env `SENTIMENT_PRECISION`, else "auto": bfloat16 mixed
    precision where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX, about 1.5-2x faster for these models), float32 elsewhere.
    The weights, the optimizer and every evaluation stay float32.
    """
    precision = precision or os.environ.get("SENTIMENT_PRECISION") or "auto"
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    return "fp32"


def autocast(device, precision: str):
    """A context that runs matrix products in bfloat16 when `precision` is "bf16" (else does nothing)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loss_and_correct(logits: torch.Tensor, labels: torch.Tensor, criterion) -> tuple[torch.Tensor, int]:
    """Loss and number of correct predictions for binary ([batch, 1]) or multi-class logits."""
    if logits.shape[-1] == 1:
        logits = logits.squeeze(-1)
        loss = criterion(logits, labels.float())
        correct = ((logits > 0).long() == labels).sum()
    else:
        loss = criterion(logits, labels)
        correct = (logits.argmax(dim=-1) == labels).sum()
    return loss, int(correct)


def run_epoch(model: nn.Module, loader, criterion, device, optimizer=None, desc: str = "",
              precision: str = "fp32") -> dict:
    """One pass over `loader`; trains when `optimizer` is given, else evaluates without gradients.
    `precision` "bf16" runs the forward pass under bfloat16 autocast (see `training_precision`).

    Returns {"loss": mean loss per example, "accuracy": 0-1, "seconds": wall time}.
    """
    training = optimizer is not None
    model.train(training)
    total_loss, total_correct, total = 0.0, 0, 0
    start = time.perf_counter()
    with torch.set_grad_enabled(training):
        for text, lengths, labels in progress(loader, desc or ("train" if training else "eval"), leave=False,
                                              mininterval=5.0):
            text, labels = text.to(device), labels.to(device)
            with autocast(device, precision):
                logits = model(text, lengths)
            loss, correct = loss_and_correct(logits.float(), labels, criterion)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total_loss += loss.item() * len(labels)
            total_correct += correct
            total += len(labels)
    return {"loss": total_loss / max(total, 1), "accuracy": total_correct / max(total, 1),
            "seconds": time.perf_counter() - start}


def evaluate(model: nn.Module, loader, criterion, device, desc: str = "eval") -> dict:
    """Loss and accuracy on `loader` without training."""
    return run_epoch(model, loader, criterion, device, optimizer=None, desc=desc)


def fit(model: nn.Module, train_loader, valid_loader, optimizer, criterion, epochs: int, device,
        checkpoint_path: str | os.PathLike | None = None, precision: str | None = None) -> list[dict]:
    """Train for `epochs`, keep the weights with the lowest validation loss (the tutorials' rule).

    Training runs in `training_precision(device, precision)`; validation in float32.

    After training the model holds the best weights (also saved to `checkpoint_path`
    if given). Returns the history: one dict per epoch with train/valid loss and
    accuracy, epoch seconds, and whether it was the best so far.
    """
    history, best_loss, best_state = [], float("inf"), None
    precision = training_precision(device, precision)
    for epoch in range(1, epochs + 1):
        train = run_epoch(model, train_loader, criterion, device, optimizer, desc=f"epoch {epoch} train",
                          precision=precision)
        valid = evaluate(model, valid_loader, criterion, device, desc=f"epoch {epoch} valid")
        improved = valid["loss"] < best_loss
        if improved:
            best_loss = valid["loss"]
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint_path is not None:
                torch.save(best_state, checkpoint_path)
        row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
               "valid_loss": valid["loss"], "valid_accuracy": valid["accuracy"],
               "seconds": train["seconds"] + valid["seconds"], "precision": precision, "best": improved}
        history.append(row)
        print(f"Epoch {epoch:2d} | {row['seconds']:6.1f} s | train loss {train['loss']:.3f} "
              f"acc {train['accuracy']:6.2%} | valid loss {valid['loss']:.3f} acc {valid['accuracy']:6.2%}"
              + (" *" if improved else ""), flush=True)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def encode_texts(texts: Sequence[str], tokenizer: Tokenizer, vocab: Vocab, bigrams: bool = False,
                 min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw strings -> (ids LongTensor [batch, time] padded with `<pad>`, lengths int64 [batch]).

    Used to predict on new text; `min_length` pads very short input (CNNs need their widest filter).
    """
    ids, lengths = encode_batch(texts, tokenizer, vocab, bigrams, min_length)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


@torch.inference_mode()
def predict(model: nn.Module, texts: str | Sequence[str], tokenizer: Tokenizer, vocab: Vocab,
            device="cpu", batch_first: bool = True, bigrams: bool = False, min_length: int = 1) -> np.ndarray:
    """Class probabilities for raw text(s): the tutorials' `predict_sentiment` / `predict_class`.

    Binary models give P(positive) as float [n]; multi-class models give [n, n_classes].
    """
    single = isinstance(texts, str)
    ids, lengths = encode_texts([texts] if single else list(texts), tokenizer, vocab, bigrams, min_length)
    model.eval()
    logits = model((ids if batch_first else ids.t()).to(device), lengths)
    if logits.shape[-1] == 1:
        probs = torch.sigmoid(logits.squeeze(-1))
    else:
        probs = torch.softmax(logits, dim=-1)
    probs = probs.cpu().numpy()
    return probs[0] if single else probs
