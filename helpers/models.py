"""The models of the lessons, and `count_parameters`.

Each lesson defines its model classes in its own notebook cells, which a student can
edit and re-run; the cells marked `#@save` are copied into `helpers.lessons` by
`python -m helpers.sync` (tests/test_notebook_sync.py checks the copy), and this module
gives them their usual names, so `from helpers.models import CNN` is lesson 4's cell.

Every model takes `(text, lengths)`: `text` LongTensor of token ids (lesson 6's
`GRUHead`: encoder features), `lengths` int64 [batch] on the CPU, and returns logits
[batch, output_dim].
"""
from __future__ import annotations

from torch import nn

from .lessons import (  # noqa: F401  (re-exported: the lessons' classes under their usual module)
    CNN, BERTGRUSentiment, BiLSTM, FastText, GRUHead, PackedGRU, PackedLSTM, PackedRNN, SimpleRNN,
    encoder_features, length_mask, reverse_within_length)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
