"""The models of the lessons. Each notebook shows the class it uses with
`show_source`, so the code a student reads is the code that runs, kept in one place.

Every model takes `(text, lengths)`: `text` LongTensor of token ids (lesson 6's
`GRUHead`: encoder features), `lengths` int64 [batch] on the CPU, and returns logits
[batch, output_dim].
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn


class SimpleRNN(nn.Module):
    """Lesson 1: embedding -> one-layer Elman RNN -> linear on the final hidden state.

    text: [time, batch]. `lengths` is ignored on purpose: the lesson reads the
    hidden state after the last (maybe padded) step, one reason it learns so little.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.RNN(embedding_dim, hidden_dim)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text)        # [time, batch, emb]
        _, hidden = self.rnn(embedded)          # hidden: [1, batch, hidden]
        return self.fc(hidden.squeeze(0))       # [batch, output_dim]


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `lengths[b]` steps, leaving its padding at the end.

    x: [time, batch, features]; lengths: int64 [batch].
    """
    steps = torch.arange(x.shape[0], device=x.device)[:, None]             # [time, 1]
    lengths = lengths.to(x.device)[None, :]                                # [1, batch]
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)      # [time, batch]
    return x.gather(0, source.unsqueeze(2).expand_as(x))


class PackedRNN(nn.Module):
    """A (bi)directional multi-layer LSTM or GRU that ignores padding, like `nn.LSTM` / `nn.GRU`
    on a `pack_padded_sequence`, returning the last layer's final hidden states [batch, hidden * dirs].

    Why not pack? With torch 2.13 on a CPU, the backward pass through a packed LSTM
    is about 20x slower than through a padded one (see notebook 2). Here each
    direction runs on padded input instead: forward reads each review from its
    start and we take its output at the review's last real word; backward reads each
    review reversed *within its own length*, so the padding comes last for it too.
    Both see exactly the tokens packing would give them.

    x: [time, batch, features], or [batch, time, features] with `batch_first`;
    lengths: int64 [batch]. `cell` is `nn.LSTM` (subclass `PackedLSTM`) or `nn.GRU` (`PackedGRU`).
    """

    cell: type[nn.RNNBase] = nn.LSTM

    def __init__(self, input_dim: int, hidden_dim: int, n_layers: int, bidirectional: bool, dropout: float,
                 batch_first: bool = False):
        super().__init__()
        directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList([
            nn.ModuleList([self.cell(input_dim if layer == 0 else hidden_dim * directions, hidden_dim)
                           for _ in range(directions)])
            for layer in range(n_layers)])
        self.dropout = nn.Dropout(dropout)
        self.batch_first = batch_first

    def to_reference(self) -> nn.RNNBase:
        """The torch module (`nn.LSTM` or `nn.GRU`, time first) with the same weights, to compare
        against packing (dropout not copied)."""
        first = self.layers[0][0]
        reference = self.cell(first.input_size, first.hidden_size, num_layers=len(self.layers),
                              bidirectional=len(self.layers[0]) == 2)
        for layer, directions in enumerate(self.layers):
            for direction, rnn in enumerate(directions):
                suffix = f"l{layer}" + ("_reverse" if direction else "")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(reference, f"{name}_{suffix}").data.copy_(getattr(rnn, f"{name}_l0").data)
        return reference.to(first.weight_ih_l0.device)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.batch_first:
            x = x.transpose(0, 1)                                                # [time, batch, features]
        batch = torch.arange(x.shape[1], device=x.device)
        last = lengths.to(x.device) - 1
        for index, directions in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)  # between layers, as nn.LSTM(dropout=...) does
            outputs = [directions[0](x)[0]]                                      # [time, batch, hidden]
            if len(directions) == 2:
                backward, _ = directions[1](reverse_within_length(x, lengths))
                outputs.append(reverse_within_length(backward, lengths))
            x = torch.cat(outputs, dim=2)
        final = [outputs[0][last, batch]]                  # forward: state after the last real word
        if len(outputs) == 2:
            final.append(outputs[1][0])                    # backward: state after reading back to the first word
        return torch.cat(final, dim=1)                     # [batch, hidden * dirs]


class PackedLSTM(PackedRNN):
    """`PackedRNN` with LSTM cells (lesson 2)."""

    cell = nn.LSTM


class PackedGRU(PackedRNN):
    """`PackedRNN` with GRU cells (lesson 6)."""

    cell = nn.GRU


class BiLSTM(nn.Module):
    """Lesson 2: embedding -> multi-layer bidirectional LSTM that skips padding -> linear.

    text: [time, batch]. The LSTM stops at each review's real end (what packing does),
    so padding never reaches the final hidden states that feed the classifier.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int, output_dim: int,
                 n_layers: int, bidirectional: bool, dropout: float, pad_index: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.rnn = PackedLSTM(embedding_dim, hidden_dim, n_layers, bidirectional, dropout)
        self.fc = nn.Linear(hidden_dim * (2 if bidirectional else 1), output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths):
        embedded = self.dropout(self.embedding(text))       # [time, batch, emb]
        hidden = self.rnn(embedded, lengths)                # [batch, hidden * dirs]
        return self.fc(self.dropout(hidden))                # [batch, output_dim]


def length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Bool [batch, width]: True where a position holds a real token."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class FastText(nn.Module):
    """Lesson 3: average the embeddings of a review's words and bigrams -> linear.

    text: [batch, time]. The average is over real tokens only, so a review scores the
    same alone or in a padded batch (the tutorial also averaged the padding).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, output_dim: int, pad_index: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.fc = nn.Linear(embedding_dim, output_dim)

    def forward(self, text, lengths):
        embedded = self.embedding(text)                                      # [batch, time, emb]
        mask = length_mask(lengths.to(text.device), text.shape[1]).unsqueeze(2)
        pooled = (embedded * mask).sum(1) / mask.sum(1).clamp(min=1)         # [batch, emb]
        return self.fc(pooled)                                               # [batch, output_dim]


class CNN(nn.Module):
    """Lessons 4 and 5 (Kim, 2014): filters of several widths slide over the embedded
    words, max-over-time pooling keeps each filter's strongest match, dropout, linear.

    text: [batch, time], at least max(filter_sizes) long (the collate pads short
    input). Windows that lie wholly in padding are left out of the max, so a
    review scores the same alone or in a padded batch.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, n_filters: int, filter_sizes: list[int],
                 output_dim: int, dropout: float, pad_index: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.convs = nn.ModuleList([nn.Conv1d(embedding_dim, n_filters, kernel_size=size)
                                    for size in filter_sizes])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths):
        embedded = self.embedding(text).permute(0, 2, 1)                    # [batch, emb, time]
        lengths = lengths.to(text.device)
        pooled = []
        for conv in self.convs:
            conved = F.relu(conv(embedded))                                  # [batch, filters, time - size + 1]
            n_windows = (lengths - conv.kernel_size[0] + 1).clamp(min=1)
            valid = length_mask(n_windows, conved.shape[2]).unsqueeze(1)
            pooled.append(conved.masked_fill(~valid, float("-inf")).amax(dim=2))  # [batch, filters]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))              # [batch, output_dim]


def encoder_features(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A Hugging Face encoder's last hidden states [batch, time, hidden] for padded ids [batch, time].

    The attention mask hides the padding, so a review's features do not depend on
    what it is batched with.
    """
    mask = length_mask(lengths.to(ids.device), ids.shape[1]).long()
    return model(input_ids=ids, attention_mask=mask).last_hidden_state


class GRUHead(nn.Module):
    """Lesson 6's trainable part: encoder features [batch, time, emb] -> GRU that skips padding ->
    final forward and backward states -> dropout -> linear -> logits [batch, output_dim]."""

    def __init__(self, embedding_dim: int, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.rnn = PackedGRU(embedding_dim, hidden_dim, n_layers, bidirectional,
                             dropout=0 if n_layers < 2 else dropout, batch_first=True)
        self.out = nn.Linear(hidden_dim * (2 if bidirectional else 1), output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features, lengths):
        hidden = self.rnn(features, lengths)               # [batch, hidden * dirs]
        return self.out(self.dropout(hidden))              # [batch, output_dim]


class BERTGRUSentiment(nn.Module):
    """Lesson 6: a frozen BERT reads the review, a GRU reads BERT's output, a linear layer scores it.

    forward(ids [batch, time] of WordPiece ids, lengths) -> logits [batch, output_dim].
    The encoder's weights are frozen (requires_grad=False) and it stays in eval mode,
    so `head(encode(ids))` is all that training changes, and `encode` can be cached.
    """

    def __init__(self, bert: nn.Module, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.bert = bert
        for param in self.bert.parameters():
            param.requires_grad = False
        self.head = GRUHead(bert.config.hidden_size, hidden_dim, output_dim, n_layers, bidirectional, dropout)

    def encode(self, ids, lengths):
        with torch.no_grad():
            return encoder_features(self.bert, ids, lengths)   # [batch, time, emb]

    def forward(self, ids, lengths):
        return self.head(self.encode(ids, lengths), lengths)

    def train(self, mode: bool = True):
        super().train(mode)
        self.bert.eval()   # frozen means fixed features: no dropout inside BERT
        return self


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def show_source(obj) -> None:
    """Print the source code of a class or function, so the notebook shows the lesson's code."""
    print(inspect.getsource(obj).rstrip())
