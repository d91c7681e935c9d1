"""The training loop: lesson 1's epoch in each precision, the checkpoint rule, float16's gradient scaler.

(The precision rule itself: test_precision.py; the hardware record: test_hardware.py; seeds:
test_reproducibility.py.)"""
import pytest
import torch
from torch import nn

from helpers import lessons, training
from helpers.precision import AutocastForward, autocast
from helpers.training import evaluate, fit


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


def test_fit_without_validation_trains_every_epoch_and_keeps_the_last_weights(tmp_path, capsys):
    torch.manual_seed(0)
    model = Tiny()
    history = fit(model, batches(), None, torch.optim.SGD(model.parameters(), lr=5.0), nn.BCEWithLogitsLoss(),
                  epochs=3, device="cpu", checkpoint_path=tmp_path / "last.pt", precision="fp32")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(row["valid_loss"] is None and row["valid_accuracy"] is None for row in history)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 3 and "valid" not in lines[0]
    saved = torch.load(tmp_path / "last.pt")
    assert all(torch.equal(saved[name], value) for name, value in model.state_dict().items())


def test_fit_is_lesson_1s_loop():
    """fit's numbers are those of lesson 1's train_epoch / evaluate run by hand (float32)."""
    def trained(by_fit):
        torch.manual_seed(0)
        model = Tiny()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        criterion = nn.BCEWithLogitsLoss()
        if by_fit:
            return fit(model, batches(), batches(4, seed=1), optimizer, criterion, 2, "cpu", precision="fp32")
        rows = []
        for _ in range(2):
            train = lessons.train_epoch(model, batches(), optimizer, criterion, "cpu")
            valid = lessons.evaluate(model, batches(4, seed=1), criterion, "cpu")
            rows.append((train["loss"], train["accuracy"], valid["loss"], valid["accuracy"]))
        return rows

    history = trained(by_fit=True)
    assert [(row["train_loss"], row["train_accuracy"], row["valid_loss"], row["valid_accuracy"])
            for row in history] == trained(by_fit=False)


def test_fit_trains_in_bf16_through_lesson_1s_epoch(monkeypatch):
    seen = []

    def spy(model, loader, optimizer, criterion, device):
        seen.append(type(model))
        return lessons.train_epoch(model, loader, optimizer, criterion, device)

    monkeypatch.setattr(training, "train_epoch", spy)
    model = Tiny()
    fit(model, batches(), None, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), 2, "cpu",
        precision="bf16")
    assert seen == [AutocastForward] * 2
    assert model.seen_dtype == torch.bfloat16                  # the forward ran under autocast
    wrapped = AutocastForward(model, "cpu", "bf16")
    assert wrapped(torch.randn(2, 3, 4), None).dtype == torch.float32   # the loss sees float32 logits


def test_loss_and_correct_handles_one_logit_and_one_per_class():
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    loss, correct = lessons.loss_and_correct(logits, torch.tensor([1, 1, 0]), nn.BCEWithLogitsLoss())
    assert correct == 1 and loss.item() == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), torch.tensor([1.0, 1.0, 0.0])).item())
    logits = torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]])
    loss, correct = lessons.loss_and_correct(logits, torch.tensor([1, 2]), nn.CrossEntropyLoss())
    assert correct == 1 and loss.item() == pytest.approx(
        nn.functional.cross_entropy(logits, torch.tensor([1, 2])).item())


def test_fit_refuses_an_empty_loader():
    model = Tiny()
    with pytest.raises(ValueError, match="valid_loader has no batches"):
        fit(model, batches(), [], torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), 1, "cpu")


def test_fp16_trains_on_the_cpu_with_real_autocast_and_a_real_gradient_scaler(monkeypatch):
    """fit in forced fp16 on the CPU: float16 autocast and torch.amp.GradScaler("cpu"), both real."""
    handed = []

    def spy(model, loader, optimizer, criterion, device, scaler=None):
        handed.append(scaler)
        return lessons.train_epoch(model, loader, optimizer, criterion, device, scaler=scaler)

    monkeypatch.setattr(training, "train_epoch", spy)
    torch.manual_seed(0)
    model = Tiny()
    before = model.linear.weight.detach().clone()
    history = fit(model, batches(), batches(4, seed=1), torch.optim.Adam(model.parameters(), lr=0.05),
                  nn.BCEWithLogitsLoss(), epochs=2, device="cpu", precision="fp16")
    assert [row["precision"] for row in history] == ["fp16", "fp16"]
    assert len(handed) == 2 and handed[0] is handed[1] and isinstance(handed[0], torch.amp.GradScaler)
    assert [row["grad_scale"] for row in history] == [handed[0].get_scale()] * 2   # the scale it trained with
    assert not torch.equal(model.linear.weight, before) and model.linear.weight.dtype == torch.float32
    assert model.seen_dtype == torch.float32                    # validation ran without autocast
    with torch.no_grad(), autocast("cpu", "fp16"):
        assert model.linear(torch.randn(2, 4)).dtype == torch.float16


def test_lesson_1s_epoch_with_a_scaler_skips_an_overflowing_step_and_takes_the_next():
    torch.manual_seed(0)
    model = AutocastForward(Tiny(), "cpu", "fp16")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = model.model.linear.weight.detach().clone()
    # a scale so large that the loss's gradient overflows float16 (above 65,504): the step is skipped
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)
    lessons.train_epoch(model, batches(1), optimizer, nn.BCEWithLogitsLoss(), "cpu", scaler=scaler)
    assert torch.equal(model.model.linear.weight, before) and scaler.get_scale() == 2.0 ** 23   # skipped, halved
    scaler = torch.amp.GradScaler("cpu")   # the default 65,536: these gradients fit, the step is taken
    lessons.train_epoch(model, batches(1), optimizer, nn.BCEWithLogitsLoss(), "cpu", scaler=scaler)
    assert not torch.equal(model.model.linear.weight, before) and scaler.get_scale() == 2.0 ** 16


def test_an_lstm_in_fp16_on_the_cpu_fails_with_a_clear_message():
    class TinyLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.linear = nn.LSTM(4, 3), nn.Linear(3, 1)

        def forward(self, x, lengths):
            return self.linear(self.lstm(x)[0][-1])

    model = TinyLSTM()
    try:
        fit(model, batches(1), None, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), 1, "cpu",
            precision="fp16")
    except RuntimeError as err:
        assert "float16 on the CPU failed" in str(err) and "bf16 or fp32" in str(err)
    else:
        pytest.skip("this CPU's oneDNN runs float16 LSTMs: nothing to explain")
