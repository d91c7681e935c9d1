"""The training loop's precision choice and best-checkpoint rule."""
import pytest
import torch
from torch import nn

from helpers.training import autocast, evaluate, fit, training_precision


class Tiny(nn.Module):
    """Mean of the inputs' features -> linear: one logit per example."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.seen_dtype = None

    def forward(self, x, lengths):
        out = self.linear(x.mean(1))
        self.seen_dtype = out.dtype
        return out


def batches(n=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(n):
        x = torch.randn(16, 3, 4, generator=generator)
        data.append((x, torch.full((16,), 3), (x.mean((1, 2)) > 0).long()))
    return data


def test_precision_resolution(monkeypatch):
    monkeypatch.delenv("SENTIMENT_PRECISION", raising=False)
    assert training_precision("cpu", "fp32") == "fp32"
    assert training_precision("cpu", "bf16") == "bf16"
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported() if torch.backends.mkldnn.is_available() else False
    assert training_precision("cpu") == ("bf16" if native else "fp32")
    monkeypatch.setenv("SENTIMENT_PRECISION", "fp32")
    assert training_precision("cpu") == "fp32"
    assert training_precision("cpu", "bf16") == "bf16"   # an explicit argument wins over the environment
    with pytest.raises(ValueError, match="precision must be"):
        training_precision("cpu", "half")


def test_bf16_trains_the_forward_pass_and_evaluates_in_fp32():
    torch.manual_seed(0)
    model = Tiny()
    history = fit(model, batches(), batches(4, seed=1), torch.optim.Adam(model.parameters(), lr=0.05),
                  nn.BCEWithLogitsLoss(), epochs=2, device="cpu", precision="bf16")
    assert [row["precision"] for row in history] == ["bf16", "bf16"]
    assert model.linear.weight.dtype == torch.float32          # weights stay float32
    assert model.seen_dtype == torch.float32                   # the last pass, validation, ran without autocast
    with torch.no_grad(), autocast("cpu", "bf16"):
        assert model.linear(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert model.linear(torch.randn(2, 4)).dtype == torch.float32


def test_fit_keeps_the_weights_of_the_best_validation_loss():
    torch.manual_seed(0)
    model = Tiny()
    valid = batches(4, seed=1)
    history = fit(model, batches(), valid, torch.optim.SGD(model.parameters(), lr=5.0),  # lr high enough to wander
                  nn.BCEWithLogitsLoss(), epochs=6, device="cpu", precision="fp32")
    best = min(row["valid_loss"] for row in history)
    assert [row["best"] for row in history].count(True) >= 1
    assert evaluate(model, valid, nn.BCEWithLogitsLoss(), "cpu")["loss"] == pytest.approx(best, rel=1e-6)
