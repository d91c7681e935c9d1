"""Appendix C: fine-tuning lesson 6's encoder, affordable on a CPU by caching its lower layers.

A BERT-like encoder is embeddings followed by a stack of n layers. Split it after layer k:
the lower k layers stay frozen and in eval mode (no dropout), so their output for a review
never changes, and `helpers.features.encode_cached(..., layer=k)` computes it once (float16
on disk, the way lesson 6 caches the last layer). Only the upper n - k layers, a pooling and
a linear layer are trained, on that cache. With k = 0 (on a GPU) nothing is cached and the
whole encoder is fine-tuned on token ids.

* `default_train_layers`, `first_trained_layer`, `default_head_tokens`: the parameters, checked
  (clear errors for a layer count or a length that cannot work);
* `lower_layers(model, ids, lengths, layer)` (`helpers.encoders`, lesson 6's module, which caches
  its output): the embeddings and layers [0, k) on padded ids, what the cache stores;
* `UpperLayersClassifier`: trainable copies of layers [k, n) (and of the embeddings when
  k = 0), masked mean or [CLS] pooling, dropout, linear -> logits;
* `FineTunedSentiment`: frozen lower layers + the classifier, the whole model on token ids;
* `weight_decay_groups`: AdamW's parameter groups as BERT's recipe sets them: weight decay on the
  weight matrices, none on biases and LayerNorm weights;
* `ScheduledOptimizer`: an optimizer with gradient clipping and a per-batch learning-rate
  schedule behind the `zero_grad()` / `step()` that lesson 1's loop (`fit`) calls;
* the trained layers run through `helpers.encoders`' layer loop, whose `training_attention` picks
  SDPA's math kernel on a CUDA GPU: its backward pass is deterministic.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .encoders import run_layers, lower_layers, transformer_layers
from .models import length_mask

POOLINGS = ("mean", "cls")


def default_train_layers(n_layers: int, device) -> int:
    """TRAIN_LAYERS = None: every layer on a CUDA GPU (full fine-tuning), else the top half, at least one
    (3 of all-MiniLM-L6-v2's 6, 6 of bert-base-uncased's 12, 1 of the tiny BERT's 2)."""
    return n_layers if torch.device(device).type == "cuda" else max(1, n_layers // 2)


def first_trained_layer(n_layers: int, train_layers: int) -> int:
    """k, the number of frozen (cached) layers when the top `train_layers` of `n_layers` are fine-tuned."""
    if isinstance(train_layers, bool) or not isinstance(train_layers, int) or not 1 <= train_layers <= n_layers:
        raise ValueError(f"TRAIN_LAYERS must be a whole number from 1 to {n_layers} (this encoder's layers), "
                         f"not {train_layers!r}; None picks {n_layers} on a GPU and half of them on a CPU")
    return n_layers - train_layers


def default_head_tokens(max_length: int, model_max_length: int, head_tokens: int | None = None) -> int:
    """How many of a long review's first tokens head+tail truncation keeps (the rest of the `max_length - 2`
    come from its end): `head_tokens`, or about a quarter (Sun et al. 2019 kept 128 + 382 of 510)."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 3 <= max_length <= model_max_length:
        raise ValueError(f"MAX_LENGTH must be a whole number from 3 ([CLS], one token, [SEP]) to "
                         f"{model_max_length} (the most this encoder reads), not {max_length!r}")
    head = (max_length - 2) // 4 if head_tokens is None else head_tokens
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head <= max_length - 2:
        raise ValueError(f"HEAD_TOKENS must be a whole number from 0 to MAX_LENGTH - 2 ({max_length - 2}), "
                         f"not {head!r}")
    return head


def masked_mean(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean of each review's real token vectors: [batch, time, hidden] -> [batch, hidden]."""
    real = length_mask(lengths.to(hidden.device), hidden.shape[1]).unsqueeze(-1).to(hidden.dtype)
    return (hidden * real).sum(dim=1) / lengths.to(hidden.device).clamp(min=1)[:, None].to(hidden.dtype)


class UpperLayersClassifier(nn.Module):
    """The trainable part: copies of the encoder's layers [first_layer, n), pooling, dropout, linear.

    forward(inputs, lengths) -> logits [batch, output_dim]. `inputs` are the hidden states after
    layer `first_layer` (float [batch, time, hidden], the cache's re-padded rows), or, with
    `first_layer` 0, WordPiece ids [batch, time] (a copy of the embeddings is trained too: full
    fine-tuning). `pooling` "mean" averages the real tokens' vectors (how all-MiniLM-L6-v2 was
    trained to make sentence vectors), "cls" takes the [CLS] vector (BERT's convention). The copies
    start from the pretrained weights and leave the encoder itself untouched; their dropout is on
    in training.
    """

    def __init__(self, encoder: nn.Module, first_layer: int, output_dim: int = 1, pooling: str = "mean",
                 dropout: float | None = None):
        super().__init__()
        layers = transformer_layers(encoder)
        first_trained_layer(len(layers), len(layers) - first_layer)   # the same check, in layer counts
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(map(repr, POOLINGS))}, not {pooling!r}")
        self.first_layer, self.pooling, self.config = first_layer, pooling, encoder.config
        self.embeddings = copy.deepcopy(encoder.embeddings) if first_layer == 0 else None
        self.layers = copy.deepcopy(layers[first_layer:])
        self.requires_grad_(True)
        self.dropout = nn.Dropout(encoder.config.hidden_dropout_prob if dropout is None else dropout)
        self.out = nn.Linear(encoder.config.hidden_size, output_dim)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The last layer's hidden states [batch, time, hidden] (the encoder's `last_hidden_state`)."""
        hidden = self.embeddings(input_ids=inputs) if self.embeddings is not None else inputs
        return run_layers(self.layers, self.config, hidden, lengths)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(inputs, lengths).float()
        pooled = masked_mean(hidden, lengths) if self.pooling == "mean" else hidden[:, 0]
        return self.out(self.dropout(pooled))


class FineTunedSentiment(nn.Module):
    """The whole fine-tuned model on WordPiece ids: the frozen encoder's lower layers (eval mode, no
    gradients), then `classifier`. forward(ids [batch, time], lengths) -> logits [batch, output_dim];
    what `helpers.encoders.predict_sentiment` runs on new text."""

    def __init__(self, encoder: nn.Module, classifier: UpperLayersClassifier):
        super().__init__()
        self.encoder, self.classifier = encoder, classifier
        self.encoder.requires_grad_(False)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = ids
        if self.classifier.first_layer > 0:
            with torch.no_grad():
                inputs = lower_layers(self.encoder, ids, lengths, self.classifier.first_layer)
        return self.classifier(inputs, lengths)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()   # frozen layers give fixed output: no dropout in them
        return self


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """`model`'s trainable parameters as two optimizer parameter groups, BERT's fine-tuning recipe (Devlin et
    al., 2019; transformers' examples): `weight_decay` for the weight matrices (linear layers, embeddings),
    0 for the biases and the LayerNorm weights, which scale and shift rather than combine features and are
    not pulled towards 0. A one-dimensional parameter is a bias or a normalisation weight in these models,
    so that is the rule. Groups: [{"params", "weight_decay", "names"}, ...] (decayed first); an empty group
    is left out."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be 0 or more, not {weight_decay!r}")
    decayed, kept = ([], []), ([], [])
    for name, param in model.named_parameters():
        if param.requires_grad:
            target = kept if param.ndim <= 1 else decayed
            target[0].append(param)
            target[1].append(name)
    groups = [{"params": params, "weight_decay": decay, "names": names}
              for (params, names), decay in ((decayed, weight_decay), (kept, 0.0)) if params]
    if not groups:
        raise ValueError("the model has no trainable parameter to optimise")
    return groups


class ScheduledOptimizer:
    """`optimizer` seen through the two calls lesson 1's `train_epoch` makes, `zero_grad()` and `step()`:
    each step first clips the gradients to a total norm of `max_grad_norm` (None: no clipping), then
    steps the optimizer and `scheduler` (one learning-rate step per batch, e.g. transformers'
    `get_linear_schedule_with_warmup`). `steps` counts the steps taken; `lr` is the current rate.

    In float16 training `train_epoch` hands it to a `torch.amp.GradScaler`, which reads
    `param_groups` to unscale the gradients before calling `step()` (so the clipping sees the true
    gradients) and skips `step()`, schedule included, when they overflowed."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler, max_grad_norm: float | None = 1.0):
        self.optimizer, self.scheduler, self.max_grad_norm = optimizer, scheduler, max_grad_norm
        self.steps = 0

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def param_groups(self) -> list[dict]:
        """The wrapped optimizer's parameter groups (what a gradient scaler unscales)."""
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        if self.max_grad_norm is not None:
            params = [param for group in self.optimizer.param_groups for param in group["params"]]
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.steps += 1
