"""helpers.occlusion: each token dropped in turn gives the probabilities a hand computation gives, batching
and layout change nothing, bad input is refused by name, and the figure draws what the numbers say."""
import io
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from helpers.encoding import TextEncoding
from helpers.inference import predict
from helpers.models import CNN, FastText
from helpers.occlusion import Occlusion, describe_occlusion, occlude, plot_occlusion, variant_ids
from helpers.text import Tokenizer, Vocab

WORDS = ["<unk>", "<pad>", "not", "bad", "good", "at", "all", "film", "a", "not bad", "bad at", "at all",
         "not good", "a film"]
# one score per token: the logit of a text is the sum of its tokens' scores (bigrams included)
SCORES = {"not": -1.0, "bad": -2.0, "good": 2.0, "at": 0.1, "all": 0.2, "film": 0.3, "a": 0.0,
          "not bad": 3.5, "bad at": 0.0, "at all": 0.4, "not good": -3.0, "a film": 0.5}


class SumOfScores(nn.Module):
    """Logit = sum of the scores of a text's real tokens (`<unk>` and `<pad>` score 0); reads [batch, time]
    or, with `batch_first=False`, [time, batch]. `classes=3` gives logits (0, s, -s)."""

    def __init__(self, vocab: Vocab, batch_first: bool = True, classes: int = 1):
        super().__init__()
        self.scores = nn.Embedding(len(vocab), 1)
        with torch.no_grad():
            self.scores.weight.copy_(torch.tensor([[SCORES.get(token, 0.0)] for token in vocab.itos]))
        self.batch_first, self.classes = batch_first, classes

    def forward(self, text, lengths):
        text = text if self.batch_first else text.T
        real = torch.arange(text.shape[1])[None, :] < lengths[:, None]
        score = (self.scores(text).squeeze(2) * real).sum(1)
        return score[:, None] if self.classes == 1 else torch.stack((torch.zeros_like(score), score, -score), 1)


def encoding(bigrams=True, batch_first=True, min_length=1) -> TextEncoding:
    return TextEncoding(Tokenizer(), Vocab(WORDS), bigrams=bigrams, batch_first=batch_first, min_length=min_length)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_variants_drop_one_token_and_its_bigrams():
    ids, lengths = variant_ids(encoding(), ["not", "bad", "at", "all"])
    vocab = Vocab(WORDS)
    rows = [[vocab.itos[i] for i in row[:length]] for row, length in zip(ids, lengths)]
    assert rows[0] == ["not", "bad", "at", "all", "not bad", "bad at", "at all"]
    assert rows[1] == ["bad", "at", "all", "bad at", "at all"]              # "not" gone, with "not bad"
    assert rows[2] == ["not", "at", "all", "<unk>", "at all"]               # "not at": not in the vocabulary
    assert rows[4] == ["not", "bad", "at", "not bad", "bad at"]
    assert ids.shape == (5, 7) and lengths.tolist() == [7, 5, 5, 5, 5]


def test_effects_are_the_hand_computed_differences():
    result, = occlude(SumOfScores(Vocab(WORDS)), encoding(), "not bad at all")
    full = -1 - 2 + 0.1 + 0.2 + 3.5 + 0 + 0.4
    without = [full - (-1) - 3.5, full - (-2) - 3.5 - 0.0, full - 0.1 - 0.0 - 0.4 + 0, full - 0.2 - 0.4]
    assert result.tokens == ["not", "bad", "at", "all"]
    assert result.probability == pytest.approx(sigmoid(full), abs=1e-6)
    assert result.without == pytest.approx([sigmoid(x) for x in without], abs=1e-6)
    assert result.effects() == pytest.approx([sigmoid(full) - sigmoid(x) for x in without], abs=1e-6)
    assert result.log_odds == pytest.approx(full, abs=1e-6)
    assert result.effects("log-odds") == pytest.approx([full - x for x in without], abs=1e-6)
    # "not" pushes towards positive here only through the bigram "not bad" (+3.5 outweighs its own -1)
    assert result.effects()[0] > 0 and result.strongest(1) == [0]
    assert result.strongest(4, "log-odds") == [0, 1, 3, 2]      # log-odds effects 2.5, 1.5, 0.5, 0.6



def test_without_bigrams_not_only_pulls_down():
    result, = occlude(SumOfScores(Vocab(WORDS)), encoding(bigrams=False), "not bad at all")
    assert result.effects()[0] < 0 and result.effects()[1] < 0     # "not" and "bad" both score negative alone


def test_batching_and_layout_change_nothing_and_agree_with_predict():
    texts = ["not bad at all", "a good film", "not good", "bad"]
    reference = occlude(SumOfScores(Vocab(WORDS)), encoding(), texts)
    for batch_size, batch_first in ((1, True), (2, False), (1000, False)):
        model = SumOfScores(Vocab(WORDS), batch_first=batch_first)
        again = occlude(model, encoding(batch_first=batch_first), texts, batch_size=batch_size)
        for first, second in zip(reference, again):
            assert second.probability == pytest.approx(first.probability, abs=1e-6)
            np.testing.assert_allclose(second.without, first.without, atol=1e-6)
    # each variant scores as `predict` scores the text written without that token
    model = SumOfScores(Vocab(WORDS))
    for result in reference:
        for i in range(len(result.tokens)):
            dropped = " ".join(result.tokens[:i] + result.tokens[i + 1:])
            expected = predict(model, encoding(), dropped) if dropped else predict(model, encoding(), "")
            assert result.without[i] == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize("kind", ["fasttext", "cnn"])
def test_lesson_models_match_predict_on_each_variant(kind):
    """The lessons' FastText (bigrams) and CNN (min_length 5: variants shorter than the widest filter)."""
    torch.manual_seed(0)
    vocab = Vocab(WORDS)
    if kind == "fasttext":
        model, chosen = FastText(len(vocab), 8, 1, vocab.pad_index), encoding()
    else:
        model, chosen = CNN(len(vocab), 8, 4, [3, 4, 5], 1, 0.5, vocab.pad_index), encoding(False, min_length=5)
    model.train()    # occlude must switch dropout off itself
    result, = occlude(model, chosen, "not bad at all, a good film", batch_size=3)
    for i in range(len(result.tokens)):
        dropped = " ".join(result.tokens[:i] + result.tokens[i + 1:])
        assert result.without[i] == pytest.approx(float(predict(model, chosen, dropped)), abs=1e-5)
    assert result.probability == pytest.approx(float(predict(model, chosen, "not bad at all, a good film")), abs=1e-5)


def test_a_multi_class_model_follows_the_class_asked_for():
    model = SumOfScores(Vocab(WORDS), classes=3)
    with pytest.raises(ValueError, match="3 outputs: pass class_index"):
        occlude(model, encoding(), "a good film")
    result, = occlude(model, encoding(), "a good film", class_index=1, label="B")
    score = 0.0 + 2.0 + 0.3                # "a", "good", "film" (bigrams "a good", "good film": unknown)
    expected = math.exp(score) / (1 + math.exp(score) + math.exp(-score))
    assert result.probability == pytest.approx(expected, abs=1e-6) and result.label == "B"


@pytest.mark.parametrize("texts, message", [([], "no texts"), (["fine", "   "], "text 1 .* has no tokens"),
                                            ([3], "text 0 is a int")])
def test_bad_input_is_refused_by_name(texts, message):
    with pytest.raises(ValueError, match=message):
        occlude(SumOfScores(Vocab(WORDS)), encoding(), texts)


def test_one_logit_model_refuses_a_class_index():
    with pytest.raises(ValueError, match="one logit"):
        occlude(SumOfScores(Vocab(WORDS)), encoding(), "good", class_index=2)


def made_up(text: str, effects: list[float], probability: float = 0.6) -> Occlusion:
    """An occlusion with these probability effects (log-odds computed from the probabilities)."""
    tokens = text.split()
    without = np.clip(probability - np.asarray(effects, dtype=np.float64), 1e-6, 1 - 1e-6)
    return Occlusion(text, tokens, probability, probability - np.asarray(effects, dtype=np.float64), "positive",
                     math.log(probability / (1 - probability)), np.log(without / (1 - without)))


def test_the_figure_draws_one_bar_per_token_on_a_shared_symmetric_axis():
    results = [made_up("not bad at all", [0.3, -0.5, 0.0, 0.1]), made_up("good $5 film", [0.2, 0.05, -0.01])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_occlusion(results)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=50)
    assert buffer.getvalue().startswith(b"\x89PNG")
    axes = fig.axes
    assert len(axes) == 2
    widths = [[bar.get_width() for bar in ax.patches] for ax in axes]
    assert widths[0] == pytest.approx([0.3, -0.5, 0.0, 0.1]) and widths[1] == pytest.approx([0.2, 0.05, -0.01])
    assert [tick.get_text() for tick in axes[0].get_yticklabels()] == ["not", "bad", "at", "all"]
    low, high = axes[1].get_xlim()
    assert low == pytest.approx(-high) and high >= 0.5 and axes[0].get_xlim() == axes[1].get_xlim()
    assert "0.600" in axes[0].get_title(loc="left")
    colours = [bar.get_facecolor()[:3] for bar in axes[0].patches]
    assert colours[0] == matplotlib.colors.to_rgb("#4c78a8") and colours[1] == matplotlib.colors.to_rgb("#e45756")


def test_a_long_text_shows_its_strongest_tokens_in_reading_order():
    effects = [0.01 * i * (-1) ** i for i in range(40)]
    fig = plot_occlusion([made_up(" ".join(f"w{i}" for i in range(40)), effects)], max_tokens=5)
    ax = fig.axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["w35", "w36", "w37", "w38", "w39"]
    assert "5 of 40 tokens" in ax.get_title(loc="left")


def test_description_names_the_strongest_tokens_first():
    line = describe_occlusion([made_up("not bad at all", [0.3, -0.35, 0.0, 0.1])], k=2)
    assert line.startswith("P(positive) 0.600 (log-odds +0.41)  'not bad at all': most moved by 'bad' -0.350 "
                           "(log-odds -2.54; without it P 0.950)")
    assert line.index("'bad'") < line.index("'not'") and "'all'" not in line


def test_plot_refuses_nothing_to_draw_and_unknown_measures():
    with pytest.raises(ValueError, match="no occlusion results"):
        plot_occlusion([])
    with pytest.raises(ValueError, match="measure must be one of"):
        plot_occlusion([made_up("good", [0.1])], measure="logit")
    with pytest.raises(ValueError, match="measure must be one of"):
        made_up("good", [0.1]).effects("odds")


def test_the_log_odds_view_shows_what_moved_a_sure_model():
    """A model at P = 0.0001: dropping a token changes P by < 0.001 but the log-odds by whole units."""
    result, = occlude(SumOfScores(Vocab(WORDS)), encoding(bigrams=False), "bad bad bad not")
    assert result.probability < 0.01 and np.abs(result.effects()).max() < 0.01
    fig = plot_occlusion([result], measure="log-odds")
    ax = fig.axes[0]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([-2, -2, -2, -1], abs=1e-6)
    assert "log-odds" in ax.get_xlabel()
    assert "log-odds -7.00" in describe_occlusion([result], k=1, measure="log-odds")
