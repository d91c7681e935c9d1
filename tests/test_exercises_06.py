"""Solutions to lesson 6's exercises (notebooks/06_transformers_sentiment.ipynb, section "Exercises").

Exercise 1 replaces the GRU that reads the cached token vectors by a pooling and a linear layer: the
mean over a review's real tokens (how all-MiniLM-L6-v2's model card makes a sentence vector) or the
first token's, `[CLS]`'s, vector (BERT's convention for classification). The checks run on the tiny
random BERT and the fixture reviews (the smoke profile's): they test the arithmetic, the padding and
that training runs, not accuracy (the tiny BERT's features mean nothing).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.batching import feature_loader
from helpers.course import TINY_ENCODER_DIR
from helpers.encoders import load_encoder
from helpers.features import encode_cached
from helpers.models import GRUHead, count_parameters, length_mask
from helpers.reproducibility import set_seed
from helpers.training import fit

POOLINGS = ("mean", "cls")


class PooledHead(nn.Module):
    """Exercise 1: cached encoder features [batch, time, hidden] -> one vector per review [batch, hidden]
    -> dropout -> linear -> logits [batch, output_dim].

    `pooling` "mean": the average of the review's real token vectors (the padding left out, so a
    review scores the same alone or in a padded batch); "cls": the first token's vector, `[CLS]`.
    """

    def __init__(self, embedding_dim: int, output_dim: int, pooling: str = "mean", dropout: float = 0.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(embedding_dim, output_dim)

    def forward(self, features, lengths):
        if self.pooling == "cls":
            pooled = features[:, 0]                                                  # [batch, hidden]
        else:
            mask = length_mask(lengths.to(features.device), features.shape[1]).unsqueeze(2)   # [batch, time, 1]
            pooled = (features * mask).sum(1) / mask.sum(1).clamp(min=1)             # [batch, hidden]
        return self.out(self.dropout(pooled))                                       # [batch, output_dim]


@pytest.fixture(scope="module")
def tiny():
    return load_encoder(TINY_ENCODER_DIR)


def _padded_pair(hidden: int = 8):
    """A 3-token and a 7-token review, alone and in one batch padded to 7 (longest first)."""
    torch.manual_seed(0)
    short, long = torch.randn(3, hidden), torch.randn(7, hidden)
    batch = torch.zeros(2, 7, hidden)
    batch[0], batch[1, :3] = long, short
    return short, long, batch


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_review_scores_the_same_alone_and_in_a_padded_batch(pooling):
    short, _, batch = _padded_pair()
    head = PooledHead(8, 1, pooling).eval()
    alone = head(short[None], torch.tensor([3]))
    together = head(batch, torch.tensor([7, 3]))
    torch.testing.assert_close(alone[0], together[1])


def test_mean_pooling_averages_the_real_tokens_and_cls_takes_the_first():
    short, long, batch = _padded_pair()
    lengths = torch.tensor([7, 3])
    mean_head, cls_head = PooledHead(8, 1, "mean").eval(), PooledHead(8, 1, "cls").eval()
    expected_mean = torch.stack([long.mean(0), short.mean(0)])        # the padding rows are not averaged
    torch.testing.assert_close(mean_head(batch, lengths), mean_head.out(expected_mean))
    assert not torch.allclose(mean_head(batch, lengths), mean_head.out(batch.mean(1)))   # averaging padding differs
    torch.testing.assert_close(cls_head(batch, lengths), cls_head.out(torch.stack([long[0], short[0]])))


def test_a_pooled_head_has_a_linear_layers_weights_only(tiny):
    hidden = tiny.hidden_size
    pooled = PooledHead(hidden, 1)
    gru = GRUHead(hidden, 256, 1, 2, True, 0.25)
    assert count_parameters(pooled) == hidden + 1
    assert count_parameters(gru) > 1000 * count_parameters(pooled)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_pooled_head_trains_on_cached_fixture_features(tiny, imdb_fixture, tmp_path, pooling):
    """Fit on the fixture reviews' cached tiny-BERT features, as the lesson's cells do: the training loss falls."""
    train = imdb_fixture["train"]
    store = encode_cached(tiny, train.texts, 128, tmp_path, device="cpu", precision="fp32")
    loader = feature_loader([store], [train.labels], 32, shuffle=True, seed=1234)
    set_seed(1234)
    head = PooledHead(tiny.hidden_size, 1, pooling)
    history = fit(head, loader, None, torch.optim.Adam(head.parameters(), lr=1e-2), nn.BCEWithLogitsLoss(),
                  8, "cpu", precision="fp32")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
