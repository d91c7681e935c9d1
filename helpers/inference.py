"""A trained model on new text: class probabilities, predictions, its most confident mistakes.

* `logits`: an encoded batch -> the model's raw outputs, in eval mode without gradients;
* `probabilities`: an encoded batch -> P(positive) [batch] (one logit) or [batch, n_classes];
* `predict`: raw text(s) -> the same, encoded by the `helpers.encoding.TextEncoding` the model was
  trained with (the tutorials' `predict_sentiment` / `predict_class`);
* `most_confident_mistakes`: the examples of a dataset the model gets wrong most confidently.

Binary models return one logit per example ([batch, 1]), multi-class models [batch, n_classes].
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .batching import PadCollate, SequenceDataset
from .encoding import TextEncoding


@torch.inference_mode()
def logits(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor, device="cpu") -> torch.Tensor:
    """The model's raw outputs for an encoded batch, in eval mode without gradients: float32 [batch, outputs]
    on `device`."""
    model.eval()
    return model(ids.to(device), lengths).float()


def probabilities(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor, device="cpu") -> np.ndarray:
    """The model's class probabilities for an encoded batch (`logits`, then):
    P(positive) float [batch] for one logit (sigmoid), else [batch, n_classes] (softmax)."""
    outputs = logits(model, ids, lengths, device)
    if outputs.shape[-1] == 1:
        return torch.sigmoid(outputs.squeeze(-1)).cpu().numpy()
    return torch.softmax(outputs, dim=-1).cpu().numpy()


def predict(model: nn.Module, encoding: TextEncoding, texts: str | Sequence[str], device="cpu") -> np.ndarray:
    """Class probabilities for raw text(s), encoded by `encoding` (its layout is the model's).

    Binary models give P(positive) as float [n]; multi-class models give [n, n_classes];
    a single string gives one row.
    """
    single = isinstance(texts, str)
    ids, lengths = encoding.encode([texts] if single else list(texts))
    probs = probabilities(model, torch.from_numpy(ids), torch.from_numpy(lengths), device)
    return probs[0] if single else probs


def most_confident_mistakes(model: nn.Module, encoding: TextEncoding, dataset, device="cpu", k: int = 5,
                            batch_size: int = 64) -> list[dict]:
    """The `k` examples of `dataset` that `model` gets wrong with the highest probability for its (wrong)
    answer, most confident first.

    dataset: a tokenized `helpers.data.TextDataset` (`.texts`, `.labels`, `.tokens` without bigrams),
    encoded and padded by `encoding` as training's loaders do. Works for one logit (P(positive)) and
    for several classes. Returns dicts with "index" (into `dataset.texts`), "label", "predicted",
    "confidence" (probability of the predicted class) and "text".
    """
    sequences = SequenceDataset(*encoding.numericalize(dataset.tokens), dataset.labels)
    collate = PadCollate.for_encoding(encoding)
    # Longest first, as PadCollate orders a batch: each batch comes back in the order it was asked for.
    order = np.argsort(-np.maximum(sequences.lengths, 1), kind="stable")
    mistakes = []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size].tolist()
        ids, lengths, labels = collate([sequences[i] for i in chunk])
        probs = probabilities(model, ids, lengths, device)
        if probs.ndim == 1:                                     # one logit: P(positive)
            predicted = (probs > 0.5).astype(np.int64)
            confidence = np.where(predicted == 1, probs, 1 - probs)
        else:
            predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
        for row, index in enumerate(chunk):
            if predicted[row] != int(labels[row]):
                mistakes.append({"index": index, "label": int(labels[row]), "predicted": int(predicted[row]),
                                 "confidence": float(confidence[row]), "text": dataset.texts[index]})
    return sorted(mistakes, key=lambda mistake: -mistake["confidence"])[:k]
