"""Lesson 5's exercises 1 (cross-entropy by hand) and 2 (standard error of a difference of means): solutions,
and what any solution must pass. Runs on the fixture TREC questions."""
import json
import math
import statistics

import pytest
import torch
from torch import nn

from conftest import REPO_ROOT
from helpers.batching import loaders_for
from helpers.data import load_trec, stratified_split
from helpers.encoding import TextEncoding
from helpers.models import CNN
from helpers.text import Vocab


def cross_entropy_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log softmax(logits)[label]; logits [batch, classes], labels int64 [batch]."""
    shifted = logits - logits.max(dim=1, keepdim=True).values            # e^x cannot overflow
    log_probabilities = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_probabilities[torch.arange(len(labels)), labels].mean()


def standard_error_of_difference(a: list[float], b: list[float]) -> float:
    """sqrt(s_a^2 / n_a + s_b^2 / n_b) with sample standard deviations (n - 1)."""
    return math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def test_cross_entropy_by_hand_matches_the_loss_on_a_trec_batch(fixture_data_dir, tokenizer, tmp_path):
    trec = load_trec(tokenizer, fixture_data_dir, cache=tmp_path)
    train, _ = stratified_split(trec["train"], valid_fraction=0.3, seed=0)
    vocab = Vocab.from_counts(train.tokens.counts())
    encoding = TextEncoding(tokenizer, vocab, min_length=4)
    ids, lengths, labels = next(iter(loaders_for({"train": train}, encoding, 32, seed=0)["train"]))
    torch.manual_seed(0)
    model = CNN(len(vocab), 16, 8, [2, 3, 4], len(train.label_names), 0.5, vocab.pad_index).eval()
    logits = model(ids, lengths)
    assert logits.shape == (len(labels), len(train.label_names))
    torch.testing.assert_close(cross_entropy_by_hand(logits, labels), nn.CrossEntropyLoss()(logits, labels))


def test_cross_entropy_by_hand_survives_large_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    expected = (0.0 + math.log(3)) / 2
    assert cross_entropy_by_hand(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_standard_error_of_the_difference():
    # the rule on two seed studies of sd 2.05 and 2.10 points over 10 seeds each
    assert math.sqrt(2.05 ** 2 / 10 + 2.10 ** 2 / 10) == pytest.approx(0.928, abs=1e-3)
    assert standard_error_of_difference([1, 2, 3, 4], [10, 10, 10, 10]) == pytest.approx(
        math.sqrt(statistics.variance([1, 2, 3, 4]) / 4))
    assert standard_error_of_difference([80.0, 82.0, 84.0], [90.0, 90.0, 90.0]) == pytest.approx(2 / math.sqrt(3))


def test_standard_error_from_the_seed_study_runs():
    path = REPO_ROOT / "results" / "benchmarks" / "seeds_05_multiclass_questions.json"
    if not path.is_file():
        pytest.skip("no seed study in this checkout")
    study = json.loads(path.read_text())
    lesson = [100 * run["test_accuracy"] for run in study["runs"]]
    beyond = [100 * run["beyond_test_accuracy"] for run in study["runs"]]
    a, b = study["summary"]["lesson"], study["summary"]["beyond"]
    assert standard_error_of_difference(lesson, beyond) == pytest.approx(
        math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"]), rel=1e-6)
