"""Why did the model say that? Occlusion: the model's probability with each token of a text dropped in turn.

    results = occlude(model, encoding, ["not bad at all", "a fine film"])   # one `Occlusion` per text
    print(describe_occlusion(results))        # the tokens that moved P(positive) most, in words
    plot_occlusion(results)                   # a matplotlib Figure: one bar per token

For a text of n tokens (the encoding's tokenizer), variant i is the text without token i. Each variant is
encoded as the encoding encodes a text: the bigrams of what remains are appended when `encoding.bigrams`
(dropping "not" from "not bad" also drops the bigram "not bad"), the batch is padded to `min_length`. The
text and its n variants go through the model together, in batches of `batch_size` ([batch, time]).

A token's effect is P(text) - P(text without it): positive when the token pushed the answer towards the
class, negative when it pushed away; or the same difference in log-odds log(P / (1 - P)) (for one logit:
the logit itself), which still shows what moved a model that is sure (P near 0 or 1, where the sigmoid is
flat and probabilities barely change). Effects are not additive: a token can matter only together with
another (dropping either of "not bad" may change little when the other still carries the phrase).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .diagrams import PALETTE, Diagram
from .encoding import TextEncoding
from .inference import logits

TOWARDS = PALETTE["embedding"]   # bars of tokens that pushed towards the class
AWAY = PALETTE["highlight"]      # and away from it


MEASURES = ("probability", "log-odds")


@dataclass(frozen=True)
class Occlusion:
    """One text's occlusion. `tokens`: the encoding's tokens (without bigrams), n of them; `probability` and
    `log_odds`: P(label) of the whole text and its log-odds log(P / (1 - P)); `without` and `without_log_odds`:
    float [n], the same with token i dropped; `label`: the class followed."""

    text: str
    tokens: list[str]
    probability: float
    without: np.ndarray
    label: str
    log_odds: float
    without_log_odds: np.ndarray

    def effects(self, measure: str = "probability") -> np.ndarray:
        """float [n]: the measure of the text minus the measure without token i; > 0: token i pushed towards
        `label`. "probability": P(label) - P(label without it); "log-odds": the same in log-odds, which
        still moves when P is near 0 or 1 (where the sigmoid is flat and probabilities hardly change)."""
        if measure == "probability":
            return self.probability - self.without
        if measure == "log-odds":
            return self.log_odds - self.without_log_odds
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")

    def strongest(self, k: int, measure: str = "probability") -> list[int]:
        """Positions of the `k` tokens with the largest |effect|, largest first (ties: earlier first)."""
        size = np.abs(self.effects(measure))
        return np.argsort(-size, kind="stable")[:k].tolist()


def variant_ids(encoding: TextEncoding, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The text `tokens` and each of its n variants with one token dropped, encoded by `encoding`:
    (ids int64 [n + 1, time] ([time, n + 1] when not `encoding.batch_first`), lengths int64 [n + 1]); row 0
    is the whole text, row i + 1 the text without token i. An empty variant is one `<pad>`, as `encode` does."""
    variants = [list(tokens)] + [[*tokens[:i], *tokens[i + 1:]] for i in range(len(tokens))]
    return encoding.encode_tokens(variants)


def _logits(model: nn.Module, ids: np.ndarray, lengths: np.ndarray, batch_first: bool, batch_size: int,
            device) -> np.ndarray:
    """The model's logits float64 [rows, outputs] for encoded rows, `batch_size` rows at a time
    (`helpers.inference.logits`: eval mode, no gradients)."""
    ids = torch.from_numpy(ids)
    chunks = []
    for start in range(0, len(lengths), batch_size):
        rows = slice(start, start + batch_size)
        chunk = ids[rows] if batch_first else ids[:, rows].contiguous()
        chunks.append(logits(model, chunk, torch.from_numpy(lengths[rows]), device).double().cpu().numpy())
    return np.concatenate(chunks)


def _class_log_odds(logits: np.ndarray, class_index: int | None) -> np.ndarray:
    """float64 [rows]: log(P / (1 - P)) of the followed class. One logit: the logit itself; several:
    z_k - logsumexp(the other logits) (what softmax makes of them)."""
    if logits.shape[1] == 1:
        if class_index not in (None, 0):
            raise ValueError(f"the model has one logit (P(positive)); class_index {class_index!r} means nothing here")
        return logits[:, 0]
    if class_index is None or not 0 <= class_index < logits.shape[1]:
        raise ValueError(f"the model has {logits.shape[1]} outputs: pass class_index, one of "
                         f"0..{logits.shape[1] - 1}, for the class whose probability to follow (got {class_index!r})")
    others = np.delete(logits, class_index, axis=1)
    top = others.max(axis=1)
    return logits[:, class_index] - (top + np.log(np.exp(others - top[:, None]).sum(axis=1)))


def occlude(model: nn.Module, encoding: TextEncoding, texts: str | Sequence[str], device="cpu", *,
            class_index: int | None = None, label: str = "positive", batch_size: int = 128) -> list[Occlusion]:
    """Occlusion of each text in `texts` (a string counts as one text) by `model`, read through `encoding`
    (the encoding the model was trained with).

    A one-logit model gives P(positive) (sigmoid); a model with several outputs needs `class_index`, the
    class whose probability (softmax) is followed, and `label` names it. Variants go through the model
    `batch_size` at a time, in eval mode without gradients. A text without any token is refused.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("no texts to occlude: pass at least one")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    results = []
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {number} is a {type(text).__name__}, not a string")
        tokens = encoding.tokenizer(text)
        if not tokens:
            raise ValueError(f"text {number} ({text[:40]!r}) has no tokens: there is nothing to drop")
        ids, lengths = variant_ids(encoding, tokens)
        log_odds = _class_log_odds(_logits(model, ids, lengths, encoding.batch_first, batch_size, device),
                                   class_index)
        probability = 1 / (1 + np.exp(-log_odds))
        results.append(Occlusion(text, list(tokens), float(probability[0]), probability[1:], label,
                                 float(log_odds[0]), log_odds[1:]))
    return results


def _shown(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def describe_occlusion(results: Sequence[Occlusion], k: int = 3, measure: str = "probability") -> str:
    """Per text, one line: P(label) and its log-odds, then the `k` tokens whose dropping changed `measure`
    most, each with its effect on P(label), on the log-odds, and P(label) without it."""
    lines = []
    for result in results:
        moved = ", ".join(f"{result.tokens[i]!r} {result.effects()[i]:+.3f} (log-odds "
                          f"{result.effects('log-odds')[i]:+.2f}; without it P {result.without[i]:.3f})"
                          for i in result.strongest(k, measure))
        lines.append(f"P({result.label}) {result.probability:.3f} (log-odds {result.log_odds:+.2f})  "
                     f"{_shown(result.text)!r}: most moved by {moved}")
    return "\n".join(lines)


def plot_occlusion(results: Sequence[Occlusion], title: str = "", max_tokens: int = 25,
                   measure: str = "probability", path: str | os.PathLike | None = None) -> Figure:
    """One horizontal bar chart per text, stacked: a bar per token in reading order (top to bottom), its
    length the token's effect on `measure` ("probability": P(text) - P(text without it); "log-odds": the
    same in log-odds), blue towards the label, red away from it, its value written beside it. All charts
    share one symmetric x-axis, so bars compare across texts. A text of more than `max_tokens` tokens
    shows the `max_tokens` with the largest |effect| (its title says so). Returns the figure (a
    `helpers.diagrams.Diagram`: no pyplot, so nothing is shown twice, and it displays itself); saved as PNG when `path` is given."""
    if not results:
        raise ValueError("no occlusion results to plot")
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    shown = [sorted(result.strongest(max_tokens, measure)) for result in results]
    smallest = 0.05 if measure == "probability" else 0.5
    limit = max(max(float(np.abs(result.effects(measure)).max()) for result in results) * 1.25, smallest)
    digits = 3 if measure == "probability" else 2
    heights = [len(positions) + 1.6 for positions in shown]
    fig = Diagram(figsize=(8, 0.27 * sum(heights) + 0.9), facecolor="white", layout="constrained")
    axes = fig.subplots(len(results), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, result, positions in zip(axes, results, shown):
        effects = result.effects(measure)[positions]
        rows = np.arange(len(positions))
        ax.barh(rows, effects, color=[TOWARDS if effect > 0 else AWAY for effect in effects], height=0.7)
        ax.set_yticks(rows, [result.tokens[i].replace("$", r"\$") for i in positions])
        ax.set_ylim(len(positions) - 0.4, -0.6)   # reading order, top to bottom
        ax.axvline(0, color=PALETTE["ink"], lw=0.8)
        for row, effect in zip(rows, effects):
            ax.text(effect + np.copysign(0.02 * limit, effect), row, f"{effect:+.{digits}f}", va="center",
                    ha="left" if effect >= 0 else "right", fontsize=8, color=PALETTE["ink"])
        ax.grid(axis="x", alpha=0.3)
        subset = "" if len(positions) == len(result.tokens) else (
            f" ({len(positions)} of {len(result.tokens)} tokens: those that moved it most)")
        shown_text = _shown(result.text, 30 if subset else 60)
        ax.set_title(f"P({result.label}) = {result.probability:.3f}   {shown_text!r}{subset}".replace(
            "$", r"\$"), fontsize=9.5, loc="left")
    axes[-1].set_xlim(-limit, limit)
    what = f"P({results[0].label})" if measure == "probability" else f"log-odds of {results[0].label}"
    axes[-1].set_xlabel(f"effect of the token: {what} with it - without it")
    fig.suptitle(title or f"Occlusion: drop one token at a time (blue: pushed towards {results[0].label})",
                 fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
