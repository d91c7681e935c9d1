"""Solutions to appendix C's coding exercises (notebooks/C_fine_tuning.ipynb, "Exercises"): the warm-up and
linear-decay schedule written from its equation, and the weight-decay groups of BERT's recipe, on the shipped
tiny BERT (helpers/fixtures/tiny-bert): no network, seconds."""
from __future__ import annotations

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from helpers.fine_tuning import UpperLayersClassifier, weight_decay_groups
from test_transformer import tiny  # noqa: F401  (lesson 6's tiny BERT fixture, shared)


def learning_rate(step: int, total_steps: int, warmup_fraction: float, peak: float) -> float:
    """eta_s: peak * s / S_w while s < S_w (S_w = int(warmup_fraction * S)), then peak * (S - s) / (S - S_w)."""
    warmup = int(warmup_fraction * total_steps)
    if step < warmup:
        return peak * step / warmup
    return peak * max(0.0, (total_steps - step) / max(1, total_steps - warmup))


@pytest.mark.parametrize("total_steps, warmup_fraction", [(1641, 0.1), (50, 0.1), (37, 0.3), (10, 0.0)])
def test_the_schedule_by_hand_is_transformers_schedule(total_steps, warmup_fraction):
    peak = 5e-5
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_fraction * total_steps), total_steps)
    rates = []
    for _ in range(total_steps + 1):   # the rate of each step, and after the last one
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    mine = [learning_rate(step, total_steps, warmup_fraction, peak) for step in range(total_steps + 1)]
    assert rates == pytest.approx(mine, abs=1e-12)
    assert mine[-1] == 0 and max(mine) == pytest.approx(peak)
    assert (mine[0] == 0) == (int(warmup_fraction * total_steps) > 0)


def test_biases_and_layer_norms_are_the_group_without_decay(tiny):  # noqa: F811
    classifier = UpperLayersClassifier(tiny.model, first_layer=1)
    groups = {group["weight_decay"]: group["names"] for group in weight_decay_groups(classifier, 0.01)}
    names = [name for name, _ in classifier.named_parameters()]
    assert sorted(groups[0.0] + groups[0.01]) == sorted(names)
    assert set(groups[0.0]) == {name for name in names if name.endswith(".bias") or ".LayerNorm." in name}
