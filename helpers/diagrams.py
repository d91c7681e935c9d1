"""Teaching diagrams for the lessons, drawn by code with matplotlib (no torch, no data files).

Each function draws one picture a lesson explains beside its prose and returns a
`matplotlib.figure.Figure` (built without pyplot, so nothing is shown twice in a notebook and no
global figure state piles up). Inputs are explicit arguments with the lessons' own tokens as
defaults; anything random is seeded, so a figure is the same on every run.

    DIAGRAMS["rnn_unrolled"]()                 # the figure object; a notebook displays it
    LESSONS["01_simple_rnn"]                   # the names lesson 1 uses
    python -m helpers.diagrams --out DIR       # every diagram as DIR/<name>.png

Drawing conventions: one data unit is one inch (`_canvas`), so sizes and font sizes agree at any
notebook width; colours come from `PALETTE`, one per role (tokens, embeddings, hidden states,
outputs, padding, what is frozen or cached and what is trained). Artists a test checks carry a
`gid` (for example the shaded `<pad>` cells of `padded_batch` have gid "pad").
"""
from __future__ import annotations

import argparse
import io
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

PALETTE = {
    "ink": "#1f2430",
    "muted": "#6b7280",
    "token": "#e8edf5",
    "embedding": "#4c78a8",
    "hidden": "#f58518",
    "backward": "#9467bd",
    "output": "#54a24b",
    "pad": "#c9ccd1",
    "highlight": "#e45756",
    "bigram": "#b279a2",
    "frozen": "#8c8fa3",
    "trained": "#54a24b",
    "file": "#f2cf5b",
}
FONT = 10.5          # box text, points
SMALL = 9            # annotations and shapes
TITLE = 12.5
EQUATION = 12
REVIEW = ["this", "film", "is", "not", "good"]
REVIEWS = [["this", "film", "is", "not", "good"], ["loved", "it", "!"],
           ["the", "plot", "makes", "no", "sense", "at", "all"], ["superb", "."]]
TREC_CLASSES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


# ---------------------------------------------------------------- drawing primitives
def tint(color: str, amount: float) -> tuple[float, float, float]:
    """`color` mixed with white: amount 0 is white, 1 the colour itself (light fills keep text readable)."""
    return tuple(1 - amount * (1 - channel) for channel in to_rgb(color))


def _plain(text: str) -> str:
    """A token shown literally: a `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


class Diagram(Figure):
    """A matplotlib `Figure` that shows itself as a PNG in Jupyter and Colab (`_repr_png_`), whether or not
    pyplot's inline backend is on: it is built without pyplot, which alone would show only its repr text."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, facecolor=self.get_facecolor())
        return buffer.getvalue()


def _canvas(width: float, height: float):
    """A figure `width` x `height` inches with one frameless axes whose data units are inches."""
    fig = Diagram(figsize=(width, height), facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _title(ax, text: str, height: float, x: float = 0.2) -> None:
    ax.text(x, height - 0.28, text, fontsize=TITLE, fontweight="bold", color=PALETTE["ink"], va="center")


def _box(ax, x: float, y: float, w: float, h: float, text: str = "", *, face="white", edge=None,
         fontsize: float = FONT, color=None, gid: str | None = None, rounded: bool = True, lw: float = 1.2,
         ls: str = "-", weight: str = "normal", hatch: str | None = None, zorder: float = 2):
    """A box with lower-left corner (x, y) and centred text; returns the patch."""
    style = "round,pad=0,rounding_size=0.07" if rounded else "square,pad=0"
    patch = FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=face, edgecolor=edge or PALETTE["ink"],
                           lw=lw, ls=ls, hatch=hatch, zorder=zorder)
    patch.set_gid(gid)
    ax.add_patch(patch)
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=color or PALETTE["ink"], fontweight=weight, zorder=zorder + 1)
    return patch


def _cell(ax, x: float, y: float, w: float, h: float, face, *, text: str = "", gid: str | None = None,
          fontsize: float = SMALL, color=None, edge="white", lw: float = 1.0, zorder: float = 2):
    """A square-cornered grid cell (matrices, padded batches); returns the patch."""
    patch = Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, lw=lw, zorder=zorder)
    patch.set_gid(gid)
    ax.add_patch(patch)
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=color or PALETTE["ink"], zorder=zorder + 1)
    return patch


def _arrow(ax, start, end, *, color=None, lw: float = 1.3, style: str = "-|>", connection: str = "arc3",
           ls: str = "-", zorder: float = 1.5):
    arrow = FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color or PALETTE["ink"],
                            lw=lw, ls=ls, connectionstyle=connection, shrinkA=0, shrinkB=0, zorder=zorder)
    ax.add_patch(arrow)
    return arrow


def _path_arrow(ax, points: Sequence[tuple[float, float]], *, color=None, lw: float = 1.3) -> None:
    """A polyline through `points` with an arrow head on its last segment (routes around boxes)."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1], ys[:-1], color=color or PALETTE["ink"], lw=lw, solid_capstyle="butt", zorder=1.5)
    _arrow(ax, points[-2], points[-1], color=color, lw=lw)


def _vector(ax, x: float, y: float, values: Sequence[float], *, size: float = 0.16, cmap_color: str,
            vertical: bool = True, gid: str | None = None) -> None:
    """A small vector as a strip of cells shaded by |value| (an embedding, a pooled feature)."""
    values = np.asarray(values, dtype=float)
    scale = max(float(np.abs(values).max()), 1e-9)
    for index, value in enumerate(values):
        cx, cy = (x, y + (len(values) - 1 - index) * size) if vertical else (x + index * size, y)
        _cell(ax, cx, cy, size, size, tint(cmap_color, 0.15 + 0.8 * abs(value) / scale), gid=gid,
              edge="white", lw=0.6)


def _seeded_values(seed: int, *shape: int) -> np.ndarray:
    """Reproducible illustrative numbers (no real weights are involved)."""
    return np.random.default_rng(seed).normal(size=shape)


# ---------------------------------------------------------------- lesson 1: a simple RNN
def rnn_unrolled(tokens: Sequence[str] = REVIEW) -> Figure:
    """Lesson 1's `SimpleRNN` unrolled over one review: each token is looked up in `self.embedding`
    (x_t), `self.rnn` updates the hidden state h_t from x_t and h_{t-1} starting at h_0 = 0, and
    `self.fc` turns the final state h_T into one logit; sigmoid(logit) is P(positive)."""
    tokens = list(tokens)
    if not tokens:
        raise ValueError("rnn_unrolled needs at least one token")
    step, left, box_w = 1.3, 3.3, 0.95
    width, height = max(left + len(tokens) * step + 0.4, 8.0), 5.6
    fig, ax = _canvas(width, height)
    _title(ax, "An RNN reads a review one token at a time", height)
    ax.text(0.2, height - 0.72, r"$h_t = \tanh(W_{ih}\,x_t + b_{ih} + W_{hh}\,h_{t-1} + b_{hh})$"
            r"$\qquad \hat{y} = W_{fc}\,h_T + b_{fc}$", fontsize=EQUATION, va="center")
    rows = {"token": 0.35, "x": 1.3, "h": 2.3, "fc": 3.35, "out": 4.3}
    labels = {"token": "text  [time, batch]", "x": "embedded = self.embedding(text)\n[time, batch, emb]",
              "h": "self.rnn(embedded)\nhidden states", "fc": "self.fc(hidden.squeeze(0))",
              "out": "torch.sigmoid(logit)"}
    for key, y in rows.items():
        ax.text(0.2, y + 0.23, labels[key], fontsize=SMALL, color=PALETTE["muted"], va="center",
                family="monospace")
    _box(ax, left - 1.0, rows["h"], 0.75, 0.46, "$h_0 = 0$", face=tint(PALETTE["hidden"], 0.15),
         edge=PALETTE["hidden"], fontsize=SMALL)
    previous = (left - 0.25, rows["h"] + 0.23)
    for t, token in enumerate(tokens, start=1):
        x = left + (t - 1) * step
        centre = x + box_w / 2
        _box(ax, x, rows["token"], box_w, 0.46, _plain(token), face=PALETTE["token"], gid="token")
        _box(ax, x, rows["x"], box_w, 0.46, f"$x_{{{t}}}$", face=tint(PALETTE["embedding"], 0.25),
             edge=PALETTE["embedding"])
        _box(ax, x, rows["h"], box_w, 0.46, f"$h_{{{t}}}$", face=tint(PALETTE["hidden"], 0.3),
             edge=PALETTE["hidden"], gid="hidden")
        _arrow(ax, (centre, rows["token"] + 0.46), (centre, rows["x"]))
        _arrow(ax, (centre, rows["x"] + 0.46), (centre, rows["h"]))
        _arrow(ax, previous, (x, rows["h"] + 0.23), color=PALETTE["hidden"])
        previous = (x + box_w, rows["h"] + 0.23)
    last = left + (len(tokens) - 1) * step
    _box(ax, last, rows["fc"], box_w, 0.46, "fc", face=tint(PALETTE["output"], 0.3), edge=PALETTE["output"])
    _arrow(ax, (last + box_w / 2, rows["h"] + 0.46), (last + box_w / 2, rows["fc"]))
    ax.text(last - 0.12, rows["h"] + 0.72, f"$h_T$ (T = {len(tokens)})", fontsize=SMALL, ha="right",
            color=PALETTE["hidden"])
    _box(ax, last - 0.5, rows["out"], box_w + 1.0, 0.46, r"$\sigma(\hat{y})$ = P(positive)",
         face=tint(PALETTE["output"], 0.6), edge=PALETTE["output"], fontsize=SMALL + 0.5)
    _arrow(ax, (last + box_w / 2, rows["fc"] + 0.46), (last + box_w / 2, rows["out"]))
    ax.text(last + box_w / 2 + 0.1, rows["fc"] + 0.7, r"logit $\hat{y}$", fontsize=SMALL, va="center")
    return fig


def recurrence_step() -> Figure:
    """One step of lesson 1's `nn.RNN`: the input x_t (weights W_ih) and the previous hidden state
    h_{t-1} (weights W_hh) are added and squashed by tanh into h_t, which goes on to the next
    step (and, after the last token, to `self.fc`). Shapes as in `SimpleRNN.forward`."""
    width, height = 8.6, 4.2
    fig, ax = _canvas(width, height)
    _title(ax, "One recurrence step", height)
    ax.text(width / 2, height - 0.8, r"$h_t = \tanh(W_{ih}\,x_t + b_{ih} + W_{hh}\,h_{t-1} + b_{hh})$",
            fontsize=EQUATION + 1, ha="center", va="center")
    core = (3.35, 1.45, 1.9, 0.95)
    _box(ax, *core, r"$\tanh(\,\cdot + \cdot\,)$", face=tint(PALETTE["hidden"], 0.3), edge=PALETTE["hidden"],
         fontsize=FONT + 1)
    _box(ax, 0.35, 1.69, 1.2, 0.48, "$h_{t-1}$", face=tint(PALETTE["hidden"], 0.15), edge=PALETTE["hidden"])
    _box(ax, 3.7, 0.3, 1.2, 0.48, "$x_t$", face=tint(PALETTE["embedding"], 0.25), edge=PALETTE["embedding"])
    _box(ax, 7.0, 1.69, 1.2, 0.48, "$h_t$", face=tint(PALETTE["hidden"], 0.45), edge=PALETTE["hidden"])
    _arrow(ax, (1.55, 1.93), (core[0], 1.93), color=PALETTE["hidden"])
    ax.text(2.45, 2.07, r"$W_{hh}$  [hidden, hidden]", fontsize=SMALL, ha="center", va="bottom")
    _arrow(ax, (4.3, 0.78), (4.3, core[1]), color=PALETTE["embedding"])
    ax.text(4.42, 1.1, r"$W_{ih}$  [hidden, emb]", fontsize=SMALL, va="center")
    _arrow(ax, (core[0] + core[2], 1.93), (7.0, 1.93), color=PALETTE["hidden"])
    ax.text(6.12, 2.07, "to step t + 1", fontsize=SMALL, ha="center", va="bottom", color=PALETTE["muted"])
    ax.text(0.95, 1.5, "[batch, hidden]", fontsize=SMALL, ha="center", va="top", color=PALETTE["muted"])
    ax.text(4.3, 0.22, "[batch, emb]", fontsize=SMALL, ha="center", va="top", color=PALETTE["muted"])
    ax.text(7.6, 1.5, "[batch, hidden]", fontsize=SMALL, ha="center", va="top", color=PALETTE["muted"])
    ax.text(width / 2, 2.75, "the same weights at every step: nn.RNN(embedding_dim, hidden_dim)",
            fontsize=SMALL, ha="center", color=PALETTE["muted"], family="monospace")
    return fig


def _grid_columns(reviews: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[int], int]:
    reviews = [list(review) for review in reviews]
    if not reviews or any(not review for review in reviews):
        raise ValueError("the diagram needs at least one review, each with at least one token")
    lengths = [len(review) for review in reviews]
    return reviews, lengths, max(lengths)


def _time_batch_grid(ax, reviews, x0: float, top: float, cell_w: float, cell_h: float, pad: str,
                     pad_gid: str = "pad", pad_face=None) -> None:
    """Draw reviews as columns of a [time, batch] grid, time running down from `top`."""
    longest = max(len(review) for review in reviews)
    for b, review in enumerate(reviews):
        for t in range(longest):
            y = top - (t + 1) * cell_h
            if t < len(review):
                _cell(ax, x0 + b * cell_w, y, cell_w, cell_h, PALETTE["token"], text=_plain(review[t]),
                      gid="token", edge="white", lw=2)
            else:
                _cell(ax, x0 + b * cell_w, y, cell_w, cell_h, pad_face or PALETTE["pad"], text=pad,
                      gid=pad_gid, color=PALETTE["muted"], edge="white", lw=2)


def padded_batch(reviews: Sequence[Sequence[str]] = REVIEWS, pad: str = "<pad>") -> Figure:
    """A batch as lesson 1's `text` tensor [time, batch]: each review is a column, shorter ones are
    filled up to the longest with `pad` (shaded cells; there are sum(max_len - len_i) of them), and
    `lengths` records where each review really ends."""
    reviews, lengths, longest = _grid_columns(reviews)
    cell_w, cell_h = 1.25, 0.42
    left = 1.2
    width = max(left + len(reviews) * cell_w + 2.6, 7.5)
    height = 1.9 + longest * cell_h + 0.55
    fig, ax = _canvas(width, height)
    _title(ax, f"A padded batch: text is [time, batch] = [{longest}, {len(reviews)}]", height)
    top = height - 1.05
    for b in range(len(reviews)):
        ax.text(left + (b + 0.5) * cell_w, top + 0.15, f"review {b}", ha="center", fontsize=SMALL,
                color=PALETTE["muted"])
        ax.text(left + (b + 0.5) * cell_w, top - longest * cell_h - 0.3, f"{lengths[b]}", ha="center",
                fontsize=FONT, fontweight="bold", gid="length")
    for t in range(longest):
        ax.text(left - 0.15, top - (t + 0.5) * cell_h, f"t = {t}", ha="right", va="center", fontsize=SMALL,
                color=PALETTE["muted"])
    _time_batch_grid(ax, reviews, left, top, cell_w, cell_h, pad)
    ax.text(left - 0.15, top - longest * cell_h - 0.3, "lengths", ha="right", fontsize=SMALL,
            color=PALETTE["muted"], family="monospace")
    n_pad = sum(longest - length for length in lengths)
    note_x = left + len(reviews) * cell_w + 0.3
    ax.text(note_x, top - 0.1, f"{len(reviews)} reviews\n{sum(lengths)} real tokens\n{n_pad} {pad} cells",
            fontsize=FONT, va="top", linespacing=1.6)
    _cell(ax, note_x, top - 1.65, 0.3, 0.22, PALETTE["pad"])
    ax.text(note_x + 0.4, top - 1.54, f"{pad}: filler,\nnot part of a review", fontsize=SMALL, va="center",
            color=PALETTE["muted"])
    ax.text(0.2, 0.25, f"lengths = {lengths}: the collate function returns them with the batch",
            fontsize=SMALL, family="monospace", color=PALETTE["muted"])
    return fig


# ---------------------------------------------------------------- lesson 2: upgraded RNN
def packed_batch_sizes(lengths: Sequence[int]) -> list[int]:
    """`PackedSequence.batch_sizes` for these lengths: how many reviews are still running at each step."""
    return [sum(length > t for length in lengths) for t in range(max(lengths))]


def packing(reviews: Sequence[Sequence[str]] = REVIEWS, pad: str = "<pad>") -> Figure:
    """What an RNN reads from a padded batch and from `pack_padded_sequence` of the same batch.
    Padded: every review runs for max_len steps, so the short ones read `pad` tokens and their last
    state comes after the padding. Packed: reviews are sorted by length and each time step holds
    only the reviews still running; `batch_sizes[t]` counts them, `data` stores the real tokens
    time-major, and each review's final state is taken after its own last token."""
    reviews, lengths, longest = _grid_columns(reviews)
    cell_w, cell_h = 0.9, 0.4
    n = len(reviews)
    panel = n * cell_w
    left_a, left_b = 0.95, 0.95 + panel + 1.6
    width = left_b + panel + 2.3
    height = 2.45 + longest * cell_h + 0.5
    fig, ax = _canvas(width, height)
    _title(ax, "Padding against packing: what the RNN reads", height)
    top = height - 1.35
    order = sorted(range(n), key=lambda b: -lengths[b])
    sizes = packed_batch_sizes(lengths)
    ax.text(left_a + panel / 2, top + 0.52, "padded: text [time, batch]", ha="center", fontsize=FONT,
            fontweight="bold")
    ax.text(left_b + panel / 2, top + 0.52, "packed: pack_padded_sequence", ha="center", fontsize=FONT,
            fontweight="bold")
    for t in range(longest):
        ax.text(left_a - 0.12, top - (t + 0.5) * cell_h, f"t={t}", ha="right", va="center", fontsize=SMALL,
                color=PALETTE["muted"])
        ax.text(left_b - 0.12, top - (t + 0.5) * cell_h, f"t={t}", ha="right", va="center", fontsize=SMALL,
                color=PALETTE["muted"])
    for b in range(n):
        ax.text(left_a + (b + 0.5) * cell_w, top + 0.12, f"{b}", ha="center", fontsize=SMALL,
                color=PALETTE["muted"])
    _time_batch_grid(ax, reviews, left_a, top, cell_w, cell_h, pad, pad_gid="pad_read",
                     pad_face=tint(PALETTE["highlight"], 0.3))
    for b in range(n):  # where the padded RNN's final state is read: after the last row, pads included
        ax.add_patch(Rectangle((left_a + b * cell_w + 0.04, top - longest * cell_h + 0.03), cell_w - 0.08,
                               cell_h - 0.06, fill=False, edgecolor=PALETTE["hidden"], lw=2, zorder=4))
    ax.text(left_a + panel / 2, top - longest * cell_h - 0.3,
            f"{n * longest} steps read, {n * longest - sum(lengths)} of them {pad}",
            ha="center", fontsize=SMALL, color=PALETTE["highlight"])
    ax.text(left_a + panel / 2, top - longest * cell_h - 0.58, "final state: after the last row (orange)",
            ha="center", fontsize=SMALL, color=PALETTE["muted"])
    for column, b in enumerate(order):
        ax.text(left_b + (column + 0.5) * cell_w, top + 0.12, f"{b}", ha="center", fontsize=SMALL,
                color=PALETTE["muted"])
        for t, token in enumerate(reviews[b]):
            _cell(ax, left_b + column * cell_w, top - (t + 1) * cell_h, cell_w, cell_h, PALETTE["token"],
                  text=_plain(token), gid="packed_token", edge="white", lw=2)
        last = lengths[b] - 1
        ax.add_patch(Rectangle((left_b + column * cell_w + 0.04, top - (last + 1) * cell_h + 0.03), cell_w - 0.08,
                               cell_h - 0.06, fill=False, edgecolor=PALETTE["hidden"], lw=2, zorder=4))
    for t, size in enumerate(sizes):
        ax.text(left_b + panel + 0.15, top - (t + 0.5) * cell_h, f"{size}", va="center", fontsize=FONT,
                fontweight="bold", gid="batch_sizes")
    ax.text(left_b + panel + 0.15, top + 0.12, "batch_sizes", fontsize=SMALL, family="monospace")
    ax.text(left_b + panel / 2, top - longest * cell_h - 0.3,
            f"{sum(lengths)} steps read, no {pad}; sorted_indices = {order}", ha="center", fontsize=SMALL,
            color=PALETTE["output"])
    ax.text(left_b + panel / 2, top - longest * cell_h - 0.58, "final state: after each review's last token",
            ha="center", fontsize=SMALL, color=PALETTE["muted"])
    data = [token for t in range(longest) for b in order if t < lengths[b] for token in [reviews[b][t]]]
    shown = " ".join(data[:10]) + (" ..." if len(data) > 10 else "")
    ax.text(0.2, 0.25, f"packed.data (time-major, {len(data)} rows): {_plain(shown)}", fontsize=SMALL,
            family="monospace", color=PALETTE["muted"])
    return fig


def bidirectional(tokens: Sequence[str] = REVIEW) -> Figure:
    """Lesson 2's bidirectional LSTM: a forward LSTM reads the review left to right, a backward LSTM
    right to left (within the review's own length); the classifier sees the forward state after the
    last token concatenated with the backward state after the first, [h_fwd_T ; h_bwd_1]
    (`torch.cat(final, dim=1)` in `PackedRNN.forward_padded`), then `self.fc`."""
    tokens = list(tokens)
    if not tokens:
        raise ValueError("bidirectional needs at least one token")
    step, box_w, left = 1.15, 0.85, 1.75
    end = left + (len(tokens) - 1) * step + box_w
    width, height = end + 3.1, 5.3
    fig, ax = _canvas(width, height)
    _title(ax, "A bidirectional LSTM: two readings, two final states", height)
    ax.text(0.2, height - 0.72, r"$\hat{y} = W_{fc}\,[\overrightarrow{h}_T\,;\,\overleftarrow{h}_1] + b_{fc}$"
            "      hidden = torch.cat([forward final, backward final], dim=1)", fontsize=EQUATION - 1,
            va="center")
    rows = {"fwd": 3.15, "x": 1.95, "bwd": 0.75}
    ax.text(0.2, rows["fwd"] + 0.22, "forward\nLSTM", fontsize=SMALL, va="center", color=PALETTE["hidden"])
    ax.text(0.2, rows["x"] + 0.22, "embedded\ntokens", fontsize=SMALL, va="center", color=PALETTE["embedding"])
    ax.text(0.2, rows["bwd"] + 0.22, "backward\nLSTM", fontsize=SMALL, va="center", color=PALETTE["backward"])
    T = len(tokens)
    for index, token in enumerate(tokens):
        t = index + 1
        x = left + index * step
        c = x + box_w / 2
        _box(ax, x, rows["x"], box_w, 0.44, _plain(token), face=tint(PALETTE["embedding"], 0.2),
             edge=PALETTE["embedding"])
        _box(ax, x, rows["fwd"], box_w, 0.44, rf"$\overrightarrow{{h}}_{{{t}}}$",
             face=tint(PALETTE["hidden"], 0.45 if t == T else 0.2), edge=PALETTE["hidden"],
             lw=2.2 if t == T else 1.2, gid="forward")
        _box(ax, x, rows["bwd"], box_w, 0.44, rf"$\overleftarrow{{h}}_{{{t}}}$",
             face=tint(PALETTE["backward"], 0.45 if t == 1 else 0.2), edge=PALETTE["backward"],
             lw=2.2 if t == 1 else 1.2, gid="backward")
        _arrow(ax, (c, rows["x"] + 0.44), (c, rows["fwd"]), color=PALETTE["embedding"])
        _arrow(ax, (c, rows["x"]), (c, rows["bwd"] + 0.44), color=PALETTE["embedding"])
        if index:
            _arrow(ax, (x - step + box_w, rows["fwd"] + 0.22), (x, rows["fwd"] + 0.22), color=PALETTE["hidden"])
            _arrow(ax, (x, rows["bwd"] + 0.22), (x - step + box_w, rows["bwd"] + 0.22), color=PALETTE["backward"])
    cat_x, cat_y = end + 0.55, rows["x"] - 0.25
    _box(ax, cat_x, cat_y + 0.5, 1.0, 0.5, r"$\overrightarrow{h}_T$", face=tint(PALETTE["hidden"], 0.45),
         edge=PALETTE["hidden"], rounded=False, gid="concat")
    _box(ax, cat_x, cat_y, 1.0, 0.5, r"$\overleftarrow{h}_1$", face=tint(PALETTE["backward"], 0.45),
         edge=PALETTE["backward"], rounded=False, gid="concat")
    ax.text(cat_x + 0.5, cat_y + 1.12, "concatenated\n[batch, hidden × 2]", ha="center", fontsize=SMALL,
            color=PALETTE["muted"])
    last_x = left + (T - 1) * step
    _path_arrow(ax, [(last_x + box_w, rows["fwd"] + 0.22), (cat_x - 0.25, rows["fwd"] + 0.22),
                     (cat_x - 0.25, cat_y + 0.75), (cat_x, cat_y + 0.75)], color=PALETTE["hidden"])
    _path_arrow(ax, [(left + box_w / 2, rows["bwd"]), (left + box_w / 2, 0.35), (cat_x - 0.4, 0.35),
                     (cat_x - 0.4, cat_y + 0.25), (cat_x, cat_y + 0.25)], color=PALETTE["backward"])
    _box(ax, cat_x + 1.35, cat_y + 0.25, 0.75, 0.5, "fc", face=tint(PALETTE["output"], 0.3),
         edge=PALETTE["output"])
    _arrow(ax, (cat_x + 1.0, cat_y + 0.5), (cat_x + 1.35, cat_y + 0.5))
    ax.text(cat_x + 1.72, cat_y + 0.95, r"$\hat{y}$", ha="center", fontsize=FONT + 1)
    return fig


def lstm_cell() -> Figure:
    """Lesson 2's LSTM cell (PyTorch's gate names): from x_t and h_{t-1} it computes the input gate
    i, forget gate f, candidate g and output gate o; the cell state c_t = f * c_{t-1} + i * g carries
    memory along the top, and h_t = o * tanh(c_t) is the new hidden state."""
    width, height = 10.4, 4.9
    fig, ax = _canvas(width, height)
    _title(ax, "Inside an LSTM cell", height)
    ink, hidden = PALETTE["ink"], PALETTE["hidden"]
    _box(ax, 0.75, 0.55, 5.0, 3.35, face=tint(PALETTE["token"], 0.6), edge=PALETTE["muted"], lw=1.0, zorder=0.5)
    c_y, bus_y, gate_y = 3.45, 0.95, 1.55
    # cell state along the top
    _arrow(ax, (0.2, c_y), (6.35, c_y), color=ink, lw=2.0)
    ax.text(0.2, c_y + 0.16, "$c_{t-1}$", fontsize=FONT + 1)
    ax.text(6.05, c_y + 0.16, "$c_t$", fontsize=FONT + 1)
    # inputs: h_{t-1} from the left, x_t from below, joined on a bus
    ax.plot([0.2, 4.75], [bus_y, bus_y], color=ink, lw=1.3, zorder=1.5)
    ax.text(0.2, bus_y - 0.26, "$h_{t-1}$", fontsize=FONT + 1)
    _arrow(ax, (1.05, 0.2), (1.05, bus_y), color=PALETTE["embedding"])
    ax.text(1.15, 0.28, "$x_t$", fontsize=FONT + 1, color=PALETTE["embedding"])
    gates = [("f", r"$\sigma$", 1.6), ("i", r"$\sigma$", 2.45), ("g", r"$\tanh$", 3.3), ("o", r"$\sigma$", 4.4)]
    for name, function, x in gates:
        _arrow(ax, (x, bus_y), (x, gate_y), color=ink)
        _box(ax, x - 0.32, gate_y, 0.64, 0.46, function, face=tint(hidden, 0.35), edge=hidden, gid="gate")
        ax.text(x - 0.4, gate_y + 0.23, f"${name}_t$", fontsize=FONT, ha="right", va="center",
                color=PALETTE["muted"])

    def operation(x, y, text):
        ax.add_patch(Circle((x, y), 0.17, facecolor="white", edgecolor=ink, lw=1.2, zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=FONT + 1, zorder=4)

    operation(1.6, c_y, r"$\times$")                        # f * c_{t-1}
    _arrow(ax, (1.6, gate_y + 0.46), (1.6, c_y - 0.17))
    operation(2.88, 2.55, r"$\times$")                      # i * g
    _path_arrow(ax, [(2.45, gate_y + 0.46), (2.45, 2.55), (2.71, 2.55)])
    _path_arrow(ax, [(3.3, gate_y + 0.46), (3.3, 2.55), (3.05, 2.55)])
    operation(2.88, c_y, "+")
    _arrow(ax, (2.88, 2.72), (2.88, c_y - 0.17))
    # output: tanh(c_t) * o
    ax.add_patch(FancyBboxPatch((4.95, 2.55), 0.62, 0.36, boxstyle="round,pad=0,rounding_size=0.15",
                                facecolor=tint(hidden, 0.2), edgecolor=hidden, zorder=3))
    ax.text(5.26, 2.73, r"$\tanh$", ha="center", va="center", fontsize=FONT, zorder=4)
    _arrow(ax, (5.26, c_y), (5.26, 2.91))
    operation(5.26, 1.78, r"$\times$")
    _arrow(ax, (5.26, 2.55), (5.26, 1.95))
    _path_arrow(ax, [(4.4, gate_y + 0.46), (4.4, 2.2), (4.85, 2.2), (5.12, 1.9)])
    _path_arrow(ax, [(5.26, 1.61), (5.26, 0.95), (6.35, 0.95)], color=hidden)
    ax.text(6.05, 0.69, "$h_t$", fontsize=FONT + 1, color=hidden)
    equations = [
        r"$i_t = \sigma(W_{ii}\,x_t + W_{hi}\,h_{t-1} + b_i)$",
        r"$f_t = \sigma(W_{if}\,x_t + W_{hf}\,h_{t-1} + b_f)$",
        r"$g_t = \tanh(W_{ig}\,x_t + W_{hg}\,h_{t-1} + b_g)$",
        r"$o_t = \sigma(W_{io}\,x_t + W_{ho}\,h_{t-1} + b_o)$",
        r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$",
        r"$h_t = o_t \odot \tanh(c_t)$",
    ]
    for row, equation in enumerate(equations):
        ax.text(6.75, 3.85 - row * 0.5, equation, fontsize=FONT + 0.5, va="center")
    ax.text(6.75, 0.55, "i: input, f: forget, g: candidate, o: output gate\n"
            r"$\odot$: element-wise product;  nn.LSTM(emb, hidden)", fontsize=SMALL, color=PALETTE["muted"],
            va="center", linespacing=1.5)
    return fig


def dropout(tokens: Sequence[str] = REVIEW, embedding_dim: int = 8, p: float = 0.5, seed: int = 0) -> Figure:
    """`nn.Dropout(p)` on lesson 2's embedded review [time, emb]: in training (`model.train()`) each
    unit is zeroed with probability p (crossed cells) and the survivors are scaled by 1 / (1 - p), so
    the expected value is unchanged; in evaluation (`model.eval()`) it passes everything through.
    The dropped units are drawn from a generator seeded with `seed`."""
    tokens = list(tokens)
    if not tokens:
        raise ValueError("dropout needs at least one token")
    if not 0 <= p < 1:
        raise ValueError(f"p is a probability below 1, got {p!r}")
    values = np.abs(_seeded_values(seed, len(tokens), embedding_dim))
    dropped = np.random.default_rng(seed + 1).random(values.shape) < p
    cell = 0.32
    panel = embedding_dim * cell
    left_a, left_b = 1.1, 1.1 + panel + 1.3
    width = max(left_b + panel + 0.4, 8.0)
    height = 1.9 + len(tokens) * cell + 0.6
    fig, ax = _canvas(width, height)
    _title(ax, f"Dropout (p = {p:g}) on the embeddings", height)
    top = height - 1.2
    scale = values.max()
    for name, left, train in (("model.train()", left_a, True), ("model.eval()", left_b, False)):
        ax.text(left + panel / 2, top + 0.2, name, ha="center", fontsize=FONT, family="monospace",
                fontweight="bold")
        for t, token in enumerate(tokens):
            y = top - (t + 1) * cell
            if left == left_a:
                ax.text(left - 0.12, y + cell / 2, _plain(token), ha="right", va="center", fontsize=SMALL)
            for d in range(embedding_dim):
                x = left + d * cell
                if train and dropped[t, d]:
                    _cell(ax, x, y, cell, cell, "white", gid="dropped", edge=PALETTE["pad"])
                    ax.plot([x + 0.07, x + cell - 0.07], [y + 0.07, y + cell - 0.07], color=PALETTE["highlight"],
                            lw=1.1, zorder=3)
                    ax.plot([x + 0.07, x + cell - 0.07], [y + cell - 0.07, y + 0.07], color=PALETTE["highlight"],
                            lw=1.1, zorder=3)
                else:
                    strength = values[t, d] / (1 - p if train else 1) / (scale / (1 - p))
                    _cell(ax, x, y, cell, cell, tint(PALETTE["embedding"], 0.1 + 0.85 * strength),
                          gid="kept" if train else None)
    bottom = top - len(tokens) * cell
    ax.text(left_a + panel / 2, bottom - 0.3, f"{int(dropped.sum())} of {dropped.size} units zeroed,\n"
            f"the rest × 1/(1 − p) = × {1 / (1 - p):g}", ha="center", va="top", fontsize=SMALL,
            color=PALETTE["muted"])
    ax.text(left_b + panel / 2, bottom - 0.3, "every unit kept, unscaled", ha="center", va="top",
            fontsize=SMALL, color=PALETTE["muted"])
    ax.text(left_a + panel / 2, top + 0.55, "embedding dimensions →", ha="center", fontsize=SMALL,
            color=PALETTE["muted"])
    return fig


def pretrained_embeddings(vocabulary: Sequence[str] = ("<unk>", "<pad>", "the", "film", "Film", "good",
                                                         "not", "meh-ish"),
                          glove_words: Sequence[str] = ("the", "film", "good", "not"),
                          dim: int = 6, seed: int = 0) -> Figure:
    """Initialising lesson 2's `nn.Embedding` from GloVe (`embedding_matrix`): a vocabulary token found in
    GloVe gets GloVe's row copied; with the lowercase fallback a token like "Film" gets "film"'s row;
    any other token gets a random N(0, 1) row; finally the `<unk>` and `<pad>` rows are zeroed."""
    vocabulary, glove = list(vocabulary), list(glove_words)
    if not vocabulary or not glove:
        raise ValueError("pretrained_embeddings needs a vocabulary and some GloVe words")
    glove_rows = {word: _seeded_values(seed + 1 + index, dim) for index, word in enumerate(glove)}
    cell = 0.3
    row_h = 0.36
    glove_left = 1.3
    vocab_left = glove_left + dim * cell + 2.6
    width = vocab_left + dim * cell + 2.7
    height = 1.5 + len(vocabulary) * row_h + 0.7
    fig, ax = _canvas(width, height)
    _title(ax, "Pretrained embeddings: GloVe rows copied, the rest initialised", height)
    top = height - 1.15
    ax.text(glove_left + dim * cell / 2, top + 0.18, "GloVe vectors", ha="center", fontsize=FONT, fontweight="bold")
    ax.text(vocab_left + dim * cell / 2, top + 0.18, "embedding.weight", ha="center", fontsize=FONT,
            fontweight="bold", family="monospace")
    glove_y = {}
    for index, word in enumerate(glove):
        y = top - (index + 1) * row_h
        glove_y[word] = y + row_h / 2
        ax.text(glove_left - 0.12, y + row_h / 2, _plain(word), ha="right", va="center", fontsize=SMALL)
        _vector(ax, glove_left, y + (row_h - cell) / 2, glove_rows[word], size=cell,
                cmap_color=PALETTE["output"], vertical=False)
    colours = {"copied": PALETTE["output"], "lowercase": PALETTE["output"], "random": PALETTE["hidden"],
               "zero": PALETTE["pad"]}
    notes = {"copied": "copied from GloVe", "lowercase": "copied via lowercase", "random": "random N(0, 1)",
             "zero": "zeroed (<unk>, <pad>)"}
    for index, token in enumerate(vocabulary):
        y = top - (index + 1) * row_h
        if token in ("<unk>", "<pad>"):
            kind, row = "zero", np.zeros(dim)
        elif token in glove_rows:
            kind, row = "copied", glove_rows[token]
        elif token.lower() in glove_rows:
            kind, row = "lowercase", glove_rows[token.lower()]
        else:
            kind, row = "random", _seeded_values(seed + 100 + index, dim)
        ax.text(vocab_left - 0.12, y + row_h / 2, f"{index}  {_plain(token)}", ha="right", va="center",
                fontsize=SMALL, family="monospace")
        if kind == "zero":
            for d in range(dim):
                _cell(ax, vocab_left + d * cell, y + (row_h - cell) / 2, cell, cell, tint(PALETTE["pad"], 0.5),
                      text="0", fontsize=7, color=PALETTE["muted"], gid=f"row_{kind}")
        else:
            _vector(ax, vocab_left, y + (row_h - cell) / 2, row, size=cell, cmap_color=colours[kind],
                    vertical=False, gid=f"row_{kind}")
        ax.text(vocab_left + dim * cell + 0.15, y + row_h / 2, notes[kind], va="center", fontsize=SMALL,
                color=colours[kind] if kind != "zero" else PALETTE["muted"])
        if kind in ("copied", "lowercase"):
            source = token if kind == "copied" else token.lower()
            _arrow(ax, (glove_left + dim * cell + 0.08, glove_y[source]), (vocab_left - 1.3, y + row_h / 2),
                   color=tint(PALETTE["output"], 0.8), lw=1.0,
                   ls="-" if kind == "copied" else "--")
    ax.text(0.2, 0.3, "embedding_matrix(vocab, vectors, lowercase_fallback=True); then the <unk> and <pad> "
            "rows are set to zeros", fontsize=SMALL, family="monospace", color=PALETTE["muted"])
    return fig


# ---------------------------------------------------------------- lesson 3: FastText
def bigrams(tokens: Sequence[str] = ("this", "film", "is", "not", "good")) -> Figure:
    """How lesson 3's `add_bigrams` forms bigrams: every adjacent pair of tokens ("not good") becomes one
    more token, appended after the words (a pair seen twice is appended once)."""
    tokens = list(tokens)
    if len(tokens) < 2:
        raise ValueError("bigrams needs at least two tokens")
    step, box_w = 1.25, 0.95
    left = 0.6
    width = max(left + len(tokens) * step + 0.4, 8.0)
    height = 3.9
    fig, ax = _canvas(width, height)
    _title(ax, "Bigrams: each adjacent pair becomes a token", height)
    token_y, pair_y = 2.35, 1.05
    pairs = list(zip(tokens, tokens[1:]))
    seen = set()
    for index, token in enumerate(tokens):
        _box(ax, left + index * step, token_y, box_w, 0.46, _plain(token), face=PALETTE["token"], gid="token")
    for index, (a, b) in enumerate(pairs):
        x_a = left + index * step + box_w / 2
        x_b = x_a + step
        mid = (x_a + x_b) / 2
        depth = 0.2 if index % 2 == 0 else 0.4      # alternate so neighbouring pairs' brackets stay apart
        ax.plot([x_a - 0.04, x_a - 0.04, x_b + 0.04, x_b + 0.04] if index % 2 else [x_a, x_a, x_b, x_b],
                [token_y - 0.05, token_y - depth, token_y - depth, token_y - 0.05], color=PALETTE["bigram"], lw=1.2)
        _arrow(ax, (mid, token_y - depth), (mid, pair_y + 0.46), color=PALETTE["bigram"])
        repeat = (a, b) in seen
        seen.add((a, b))
        highlight = (a.lower(), b.lower()) in (("not", "good"), ("not", "bad"))
        patch = _box(ax, mid - box_w * 0.62, pair_y, box_w * 1.24, 0.46, "", gid="bigram",
                     face=tint(PALETTE["bigram"], 0.55 if highlight else 0.25), edge=PALETTE["bigram"],
                     lw=2.2 if highlight else 1.2, ls="--" if repeat else "-")
        ax.text(mid, pair_y + 0.23, _plain(f"{a} {b}"), ha="center", va="center", fontsize=SMALL + 0.5,
                gid="bigram_text")
        del patch
    distinct = list(dict.fromkeys(f"{a} {b}" for a, b in pairs))
    shown = ", ".join(repr(item) for item in [*tokens, *distinct])
    ax.text(0.2, 0.45, _plain(f"add_bigrams(tokens) = [{shown}]"), fontsize=SMALL, family="monospace",
            color=PALETTE["muted"], wrap=True)
    return fig


def bag_of_ngrams(tokens: Sequence[str] = REVIEW, embedding_dim: int = 5, seed: int = 0) -> Figure:
    """Lesson 3's `FastText`: the review's words and bigrams are looked up in one `nn.Embedding`, the
    vectors are averaged (word order is lost except inside each bigram) and `self.fc` maps the mean to a
    logit. The embedding values are illustrative (seeded)."""
    tokens = list(tokens)
    if not tokens:
        raise ValueError("bag_of_ngrams needs at least one token")
    items = [*tokens, *dict.fromkeys(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))]
    vectors = _seeded_values(seed, len(items), embedding_dim)
    step, box_w = 0.98, 0.9
    left = 0.4
    width = max(left + len(items) * step + 1.2, 8.5)
    height = 6.1
    fig, ax = _canvas(width, height)
    _title(ax, "FastText: average the embeddings of words and bigrams", height)
    ax.text(0.2, height - 0.72, r"$\mathrm{pooled} = \frac{1}{n}\sum_{i=1}^{n} e(w_i)\qquad"
            r"\hat{y} = W_{fc}\,\mathrm{pooled} + b_{fc}$", fontsize=EQUATION, va="center")
    token_y, vector_top = 4.3, 3.95
    cell = 0.16
    mean_y = 1.6
    centre = width / 2
    for index, item in enumerate(items):
        x = left + index * step
        is_bigram = index >= len(tokens)
        _box(ax, x, token_y, box_w, 0.42, _plain(item), fontsize=SMALL - (0.5 if len(item) > 9 else 0),
             face=tint(PALETTE["bigram"], 0.3) if is_bigram else PALETTE["token"],
             edge=PALETTE["bigram"] if is_bigram else PALETTE["ink"], gid="ngram")
        vx = x + box_w / 2 - cell / 2
        _vector(ax, vx, vector_top - embedding_dim * cell, vectors[index], size=cell,
                cmap_color=PALETTE["embedding"])
        _arrow(ax, (x + box_w / 2, vector_top - embedding_dim * cell - 0.05), (centre, mean_y + 0.5),
               color=tint(PALETTE["embedding"], 0.5), lw=0.9)
    ax.text(0.2, token_y + 0.6, f"{len(tokens)} words + {len(items) - len(tokens)} bigrams = {len(items)} tokens",
            fontsize=SMALL, color=PALETTE["muted"])
    ax.text(width - 0.2, vector_top - embedding_dim * cell / 2, "embedding\n[time, emb]", ha="right",
            fontsize=SMALL, color=PALETTE["muted"], va="center")
    _box(ax, centre - 0.75, mean_y, 1.5, 0.5, "mean", face=tint(PALETTE["embedding"], 0.35),
         edge=PALETTE["embedding"])
    _vector(ax, centre + 0.95, mean_y + 0.25 - embedding_dim * cell / 2, vectors.mean(axis=0), size=cell,
            cmap_color=PALETTE["embedding"])
    ax.text(centre + 1.25, mean_y + 0.25, "pooled [batch, emb]", fontsize=SMALL, va="center",
            color=PALETTE["muted"])
    _box(ax, centre - 0.75, 0.55, 1.5, 0.5, "fc", face=tint(PALETTE["output"], 0.3), edge=PALETTE["output"])
    _arrow(ax, (centre, mean_y), (centre, 1.05))
    ax.text(centre + 0.95, 0.8, r"logit $\hat{y}$ → $\sigma(\hat{y})$ = P(positive)", fontsize=SMALL + 0.5,
            va="center")
    return fig


def length_mask(reviews: Sequence[Sequence[str]] = (("not", "good", "at", "all"), ("great", "fun"),
                                                    ("a", "dull", "plot")),
                pad: str = "<pad>") -> Figure:
    """Lesson 3's `length_mask`: a batch [batch, time] and its mask (True for a real token, False for
    `pad`). FastText sums mask * embedding and divides by mask.sum(1), the review's own length, so the
    padding does not dilute the average (the tutorial divided by the padded width)."""
    reviews, lengths, longest = _grid_columns(reviews)
    cell_w, cell_h = 0.85, 0.42
    left_a = 0.95
    left_b = left_a + longest * cell_w + 1.0
    width = left_b + longest * cell_w + 2.5
    height = 1.9 + len(reviews) * cell_h + 0.5
    fig, ax = _canvas(width, height)
    _title(ax, "Masking padding out of the average", height)
    top = height - 1.15
    ax.text(left_a + longest * cell_w / 2, top + 0.18, "text [batch, time]", ha="center", fontsize=FONT,
            family="monospace")
    ax.text(left_b + longest * cell_w / 2, top + 0.18, "length_mask(lengths, time)", ha="center", fontsize=FONT,
            family="monospace")
    for b, review in enumerate(reviews):
        y = top - (b + 1) * cell_h
        ax.text(left_a - 0.12, y + cell_h / 2, f"{b}", ha="right", va="center", fontsize=SMALL,
                color=PALETTE["muted"])
        for t in range(longest):
            real = t < len(review)
            _cell(ax, left_a + t * cell_w, y, cell_w, cell_h, PALETTE["token"] if real else PALETTE["pad"],
                  text=_plain(review[t]) if real else pad, color=None if real else PALETTE["muted"], lw=2,
                  gid="token" if real else "pad")
            _cell(ax, left_b + t * cell_w, y, cell_w, cell_h,
                  tint(PALETTE["output"], 0.45) if real else "white", text="True" if real else "False",
                  color=PALETTE["ink"] if real else PALETTE["muted"], lw=2, edge="white" if real else PALETTE["pad"],
                  gid="mask_true" if real else "mask_false")
        ax.text(left_b + longest * cell_w + 0.2, y + cell_h / 2,
                f"÷ {lengths[b]}  (not ÷ {longest})" if lengths[b] < longest else f"÷ {lengths[b]}",
                va="center", fontsize=SMALL + 0.5, gid="divisor")
    ax.text(left_b + longest * cell_w + 0.2, top + 0.18, "mask.sum(1)", fontsize=SMALL, family="monospace")
    ax.text(0.2, 0.3, r"$\mathrm{pooled}_b = \sum_t m_{bt}\, e_{bt} \;/\; \sum_t m_{bt}$"
            f"        lengths = {lengths}", fontsize=FONT, color=PALETTE["ink"])
    return fig


# ---------------------------------------------------------------- lesson 4: CNN
def conv_filters(tokens: Sequence[str] = ("i", "did", "not", "like", "this", "film", "at", "all"),
                 filter_sizes: Sequence[int] = (3, 4, 5), embedding_dim: int = 6, seed: int = 0) -> Figure:
    """Lesson 4's `nn.Conv1d` filters of widths `filter_sizes` sliding over the embedded sentence
    [time, emb]: a filter of width k covers k consecutive words and all embedding dimensions, so a
    sentence of T tokens gives T - k + 1 windows, one feature-map value each. One window per filter is
    highlighted, with the feature-map cell it produces. Embedding values are illustrative (seeded)."""
    tokens, filter_sizes = list(tokens), list(filter_sizes)
    if not filter_sizes or min(filter_sizes) < 1:
        raise ValueError("filter_sizes must be positive widths")
    if len(tokens) < max(filter_sizes):
        raise ValueError(f"{len(tokens)} tokens are fewer than the widest filter ({max(filter_sizes)}); "
                         "see min_length_padding")
    T = len(tokens)
    values = np.abs(_seeded_values(seed, T, embedding_dim))
    cell = 0.27
    panel_w = embedding_dim * cell + 1.35
    left0 = 0.95
    width = max(left0 + len(filter_sizes) * (panel_w + 0.35) + 0.2, 8.5)
    height = 2.3 + T * cell + 0.6
    fig, ax = _canvas(width, height)
    _title(ax, "Convolution over text: filters span whole words", height)
    ax.text(0.2, height - 0.72, r"$c_j = \mathrm{ReLU}(\mathbf{w} \cdot [x_j ; \ldots ; x_{j+k-1}] + b)$,"
            r"  $j = 1, \ldots, T-k+1$", fontsize=EQUATION - 0.5, va="center")
    top = height - 1.45
    colours = [PALETTE["highlight"], PALETTE["hidden"], PALETTE["backward"], PALETTE["output"]]
    for panel, k in enumerate(filter_sizes):
        left = left0 + panel * (panel_w + 0.35)
        colour = colours[panel % len(colours)]
        n_windows = T - k + 1
        start = min(panel + 1, n_windows - 1) if n_windows > 1 else 0
        ax.text(left + embedding_dim * cell / 2 + 0.3, top + 0.3, f"filter width k = {k}", ha="center",
                fontsize=FONT, fontweight="bold", color=colour)
        for t, token in enumerate(tokens):
            y = top - (t + 1) * cell
            if panel == 0:
                ax.text(left - 0.1, y + cell / 2, _plain(token), ha="right", va="center", fontsize=SMALL)
            for d in range(embedding_dim):
                _cell(ax, left + d * cell, y, cell, cell, tint(PALETTE["embedding"], 0.12 + 0.6 * values[t, d]
                                                              / values.max()), lw=0.6)
        ax.add_patch(Rectangle((left - 0.03, top - (start + k) * cell), embedding_dim * cell + 0.06, k * cell,
                               fill=False, edgecolor=colour, lw=2.4, zorder=5, gid=f"window_{k}"))
        map_x = left + embedding_dim * cell + 0.75
        for j in range(n_windows):
            y = top - (j + 1) * cell
            _cell(ax, map_x, y, cell, cell, tint(colour, 0.75 if j == start else 0.25), gid=f"feature_{k}",
                  edge="white", lw=0.8)
        _arrow(ax, (left + embedding_dim * cell + 0.05, top - (start + k / 2) * cell),
               (map_x - 0.03, top - (start + 0.5) * cell), color=colour, lw=1.2)
        ax.text(map_x + cell / 2, top - n_windows * cell - 0.12, f"{n_windows}", ha="center", va="top",
                fontsize=SMALL, color=colour)
        ax.text(left + embedding_dim * cell / 2, top - T * cell - 0.12, "emb →", ha="center", va="top",
                fontsize=SMALL, color=PALETTE["muted"])
    ax.text(0.2, 0.3, f"T = {T} tokens: each filter yields T − k + 1 values (its feature map), "
            "conved: [batch, n_filters, T − k + 1]", fontsize=SMALL, color=PALETTE["muted"])
    return fig


def max_pooling(feature_maps: Sequence[Sequence[Sequence[float]]] | None = None,
                filter_sizes: Sequence[int] = (3, 4, 5), sentence_length: int = 8, n_filters: int = 2,
                dropped: Sequence[int] = (1, 4), seed: int = 0) -> Figure:
    """Lesson 4's max-over-time pooling: each filter's feature map (T - k + 1 values after ReLU) keeps
    only its largest value (`amax(dim=2)`), whatever its position; the pooled values of all widths are
    concatenated [batch, n_filters * len(filter_sizes)], dropout zeroes some in training (`dropped`
    indices), and `self.fc` maps them to the logits. `feature_maps[i][f]` is filter f of width
    filter_sizes[i]; by default seeded illustrative values for a sentence of `sentence_length` tokens."""
    filter_sizes = list(filter_sizes)
    if feature_maps is None:
        rng = np.random.default_rng(seed)
        feature_maps = [np.maximum(rng.normal(size=(n_filters, sentence_length - k + 1)), 0).round(1)
                        for k in filter_sizes]
    maps = [np.asarray(m, dtype=float) for m in feature_maps]
    if len(maps) != len(filter_sizes) or any(m.ndim != 2 or m.shape[1] < 1 for m in maps):
        raise ValueError("feature_maps needs one [n_filters, windows] array per filter size")
    pooled = np.concatenate([m.max(axis=1) for m in maps])
    cell = 0.42
    colours = [PALETTE["highlight"], PALETTE["hidden"], PALETTE["backward"], PALETTE["output"]]
    longest = max(m.shape[1] for m in maps)
    width = max(1.6 + longest * cell + 4.6, 9.0)
    rows = sum(m.shape[0] for m in maps)
    height = 1.6 + rows * cell + (len(maps) - 1) * 0.3 + 0.7
    fig, ax = _canvas(width, height)
    _title(ax, "Max-over-time pooling, concatenation, dropout, fc", height)
    ax.text(0.2, height - 0.72, r"$\hat{c} = \max_j\, c_j$       pooled = torch.cat([conved.amax(dim=2), ...], "
            "dim=1)", fontsize=FONT, va="center")
    top = height - 1.25
    map_left = 1.6
    pool_x = map_left + longest * cell + 1.0
    y = top
    pooled_positions = []
    for index, (k, m) in enumerate(zip(filter_sizes, maps)):
        colour = colours[index % len(colours)]
        for f in range(m.shape[0]):
            y -= cell
            ax.text(map_left - 0.12, y + cell / 2, f"k={k}, filter {f}", ha="right", va="center", fontsize=SMALL,
                    color=colour)
            best = int(m[f].argmax())
            for j, value in enumerate(m[f]):
                _cell(ax, map_left + j * cell, y, cell, cell, tint(colour, 0.15 + 0.6 * (value / max(m.max(), 1e-9))),
                      text=f"{value:.1f}", fontsize=8, gid=f"map_{k}", lw=1.2)
            ax.add_patch(Rectangle((map_left + best * cell, y), cell, cell, fill=False, edgecolor=PALETTE["ink"],
                                   lw=2, zorder=5))
            _arrow(ax, (map_left + m.shape[1] * cell + 0.08, y + cell / 2), (pool_x - 0.05, y + cell / 2),
                   color=tint(colour, 0.7), lw=1.0)
            pooled_positions.append(y)
        y -= 0.3
    for index, (value, py) in enumerate(zip(pooled, pooled_positions)):
        drop = index in set(dropped)
        _cell(ax, pool_x, py, cell * 1.3, cell, "white" if drop else tint(PALETTE["embedding"], 0.35),
              text="0" if drop else f"{value:.1f}", fontsize=8.5, gid="pooled", edge=PALETTE["ink"], lw=1)
        if drop:
            ax.plot([pool_x + 0.05, pool_x + cell * 1.3 - 0.05], [py + 0.05, py + cell - 0.05],
                    color=PALETTE["highlight"], lw=1, zorder=4)
    mid = (pooled_positions[0] + cell + pooled_positions[-1]) / 2
    ax.text(pool_x + cell * 0.65, pooled_positions[0] + cell + 0.12, "pooled", ha="center", fontsize=SMALL,
            family="monospace")
    ax.text(pool_x + cell * 0.65, pooled_positions[-1] - 0.12, "× marks\ndropout", ha="center", va="top",
            fontsize=8, color=PALETTE["highlight"])
    fc_x = pool_x + cell * 1.3 + 0.6
    _box(ax, fc_x, mid - 0.3, 0.8, 0.6, "fc", face=tint(PALETTE["output"], 0.3), edge=PALETTE["output"])
    _arrow(ax, (pool_x + cell * 1.3 + 0.05, mid), (fc_x, mid))
    _arrow(ax, (fc_x + 0.8, mid), (fc_x + 1.25, mid))
    ax.text(fc_x + 1.3, mid, "logits", va="center", fontsize=FONT)
    return fig


def min_length_padding(tokens: Sequence[str] = ("awful", "!"), filter_sizes: Sequence[int] = (3, 4, 5),
                       pad: str = "<pad>") -> Figure:
    """Why lesson 4 pads short input to `min_length = max(filter_sizes)`: a sentence shorter than the
    widest filter has no window of that width (T - k + 1 < 1, and `nn.Conv1d` raises an error); padded
    to min_length, every filter has at least one window, and the CNN masks windows that reach into
    the padding except a short review's first, so the review still scores the same alone or batched."""
    tokens, filter_sizes = list(tokens), list(filter_sizes)
    if not tokens:
        raise ValueError("min_length_padding needs at least one token")
    min_length = max(filter_sizes)
    T = len(tokens)
    cell_w, cell_h = 0.95, 0.42
    left_a, left_b = 1.15, 1.15 + min_length * cell_w + 0.8
    width = left_b + max(min_length, T) * cell_w + 0.5
    height = 1.3 + cell_h + 0.35 + len(filter_sizes) * 0.5 + 0.9
    fig, ax = _canvas(width, height)
    _title(ax, f"Short input is padded to min_length = max(filter_sizes) = {min_length}", height)
    top = height - 1.3
    colours = [PALETTE["highlight"], PALETTE["hidden"], PALETTE["backward"], PALETTE["output"]]
    for left, length, title in ((left_a, T, f"as written: T = {T}"),
                                (left_b, max(T, min_length), f"padded: T = {max(T, min_length)}")):
        ax.text(left + length * cell_w / 2, top + 0.2, title, ha="center", fontsize=FONT, fontweight="bold")
        for t in range(length):
            real = t < T
            _cell(ax, left + t * cell_w, top - cell_h, cell_w, cell_h, PALETTE["token"] if real else PALETTE["pad"],
                  text=_plain(tokens[t]) if real else pad, color=None if real else PALETTE["muted"], lw=2,
                  gid=None if real or left == left_a else "pad")
        for index, k in enumerate(filter_sizes):
            y = top - cell_h - 0.35 - index * 0.5
            windows = length - k + 1
            colour = colours[index % len(colours)]
            fits = windows >= 1
            ax.add_patch(Rectangle((left + 0.02, y - 0.28), k * cell_w - 0.04, 0.28, facecolor=tint(colour, 0.3),
                                   edgecolor=colour, lw=1.5, ls="-" if fits else "--", zorder=3))
            label = f"k = {k}: {windows} window{'s' if windows != 1 else ''}" if fits else \
                f"k = {k}: T − k + 1 = {windows}, no window"
            ax.text(left + 0.1, y - 0.14, label, va="center", fontsize=SMALL, zorder=4,
                    color=PALETTE["ink"] if fits else PALETTE["highlight"])
    bottom = top - cell_h - 0.35 - len(filter_sizes) * 0.5
    ax.plot([left_a + T * cell_w + 0.02] * 2, [top - cell_h - 0.1, bottom], color=PALETTE["highlight"], lw=1.2,
            ls=":")
    ax.text(left_a + T * cell_w + 0.08, bottom + 0.02, "end of input", fontsize=8, color=PALETTE["highlight"])
    ax.text(0.2, 0.3, f"PadCollate(min_length={min_length}); windows reaching into {pad} are masked, "
            "except a short review's first", fontsize=SMALL, color=PALETTE["muted"], family="monospace")
    return fig


# ---------------------------------------------------------------- lesson 5: multi-class
def softmax_probabilities(logits: Sequence[float]) -> np.ndarray:
    """softmax(logits) in float64, shifted by the maximum so large logits do not overflow."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _class_arguments(logits, classes) -> tuple[np.ndarray, list[str]]:
    logits, classes = np.asarray(logits, dtype=float), list(classes)
    if logits.ndim != 1 or len(logits) != len(classes) or len(classes) < 2:
        raise ValueError(f"need one logit per class (got {logits.shape} logits for {len(classes)} classes)")
    return logits, classes


def softmax(logits: Sequence[float] = (0.4, 1.1, 0.2, 2.6, 0.9, -0.8),
            classes: Sequence[str] = TREC_CLASSES, question: str = "Who wrote Hamlet ?") -> Figure:
    """Lesson 5's six-way output: the CNN's logits for the TREC coarse classes (left) and the
    probabilities softmax turns them into (right), which are positive and sum to 1; the largest logit
    stays the largest probability (`argmax` picks the prediction)."""
    logits, classes = _class_arguments(logits, classes)
    probabilities = softmax_probabilities(logits)
    fig = Diagram(figsize=(9.6, 4.8), facecolor="white")
    fig.text(0.015, 0.94, f'Softmax over the TREC classes for "{_plain(question)}"', fontsize=TITLE,
             fontweight="bold", va="center")
    fig.text(0.015, 0.845, r"$p_c = \mathrm{softmax}(z)_c = \dfrac{e^{z_c}}{\sum_{j} e^{z_j}}$",
             fontsize=EQUATION + 1, va="center")
    left, right = fig.add_axes((0.07, 0.11, 0.38, 0.55)), fig.add_axes((0.58, 0.11, 0.38, 0.55))
    best = int(np.argmax(logits))
    colours = [PALETTE["output"] if index == best else PALETTE["embedding"] for index in range(len(classes))]
    bars = left.bar(classes, logits, color=[tint(c, 0.55) for c in colours], edgecolor=colours)
    for bar in bars:
        bar.set_gid("logit")
    left.axhline(0, color=PALETTE["ink"], lw=0.8)
    left.set_title("logits z = model(text)", fontsize=FONT, family="monospace")
    bars = right.bar(classes, probabilities, color=[tint(c, 0.55) for c in colours], edgecolor=colours)
    for bar, p in zip(bars, probabilities):
        bar.set_gid("probability")
        right.text(bar.get_x() + bar.get_width() / 2, p + 0.015, f"{p:.2f}", ha="center", fontsize=SMALL)
    right.set_ylim(0, min(1.0, probabilities.max() + 0.12))
    right.set_title("probabilities = logits.softmax(dim=-1)", fontsize=FONT, family="monospace")
    for axes in (left, right):
        axes.tick_params(labelsize=SMALL)
        axes.spines[["top", "right"]].set_visible(False)
    fig.text(0.515, 0.43, "→", fontsize=26, ha="center", va="center", color=PALETTE["muted"])
    fig.text(0.96, 0.845, f"sum = {probabilities.sum():.2f}", ha="right", fontsize=FONT, va="center",
             color=PALETTE["muted"])
    return fig


def cross_entropy(logits: Sequence[float] = (0.4, 1.1, 0.2, 2.6, 0.9, -0.8),
                  classes: Sequence[str] = TREC_CLASSES, target: str = "HUM") -> Figure:
    """Lesson 5's `nn.CrossEntropyLoss` for one question: softmax probabilities with the true class
    highlighted, and the loss -log p(true class) on the curve -log p (right), which is 0 for a
    confident right answer and grows without bound as p(true) goes to 0."""
    logits, classes = _class_arguments(logits, classes)
    if target not in classes:
        raise ValueError(f"target {target!r} is not one of the classes {classes}")
    probabilities = softmax_probabilities(logits)
    index = classes.index(target)
    loss = -math.log(probabilities[index])
    fig = Diagram(figsize=(9.6, 4.3), facecolor="white")
    fig.text(0.015, 0.94, "Cross-entropy: minus the log-probability of the true class", fontsize=TITLE,
             fontweight="bold", va="center")
    fig.text(0.015, 0.845, r"$\mathcal{L} = -\log p_y = -z_y + \log\sum_j e^{z_j}$"
             f"     y = {target}:  " r"$\mathcal{L}$" f" = −log {probabilities[index]:.2f} = {loss:.2f}",
             fontsize=EQUATION, va="center", gid="loss")
    left, right = fig.add_axes((0.07, 0.13, 0.38, 0.6)), fig.add_axes((0.58, 0.13, 0.38, 0.6))
    bars = left.bar(classes, probabilities, color=[tint(PALETTE["embedding"], 0.4)] * len(classes),
                    edgecolor=PALETTE["embedding"])
    bars[index].set_color(tint(PALETTE["highlight"], 0.6))
    bars[index].set_edgecolor(PALETTE["highlight"])
    bars[index].set_linewidth(2)
    bars[index].set_gid("true_class")
    left.text(index, probabilities[index] + 0.015, f"p = {probabilities[index]:.2f}", ha="center",
              fontsize=SMALL, color=PALETTE["highlight"])
    left.set_ylim(0, min(1.0, probabilities.max() + 0.12))
    left.set_title("softmax probabilities, true class in red", fontsize=FONT)
    p = np.linspace(0.01, 1, 200)
    right.plot(p, -np.log(p), color=PALETTE["ink"], lw=1.5)
    right.plot([probabilities[index]], [loss], "o", color=PALETTE["highlight"], ms=8, gid="loss_point")
    right.annotate(f"{target}: −log {probabilities[index]:.2f} = {loss:.2f}", (probabilities[index], loss),
                   xytext=(max(0.05, probabilities[index] - 0.5), loss + 1.3), fontsize=SMALL,
                   arrowprops={"arrowstyle": "-", "color": PALETTE["muted"]})
    right.set_xlabel("p(true class)", fontsize=SMALL)
    right.set_ylabel(r"loss $-\log p$", fontsize=SMALL)
    right.set_xlim(0, 1.02)
    right.set_ylim(0, 4.8)
    right.set_title("the loss of one example", fontsize=FONT)
    for axes in (left, right):
        axes.tick_params(labelsize=SMALL)
        axes.spines[["top", "right"]].set_visible(False)
    return fig


def one_hot_target(logits: Sequence[float] = (0.4, 1.1, 0.2, 2.6, 0.9, -0.8),
                   classes: Sequence[str] = TREC_CLASSES, target: str = "HUM") -> Figure:
    """The target as a one-hot distribution (1 on the true class) beside the predicted distribution:
    cross-entropy H(y, p) = -sum_c y_c log p_c, which for a one-hot y is -log p of the true class."""
    logits, classes = _class_arguments(logits, classes)
    if target not in classes:
        raise ValueError(f"target {target!r} is not one of the classes {classes}")
    probabilities = softmax_probabilities(logits)
    one_hot = np.array([1.0 if c == target else 0.0 for c in classes])
    fig = Diagram(figsize=(9.2, 4.0), facecolor="white")
    fig.text(0.015, 0.93, "One-hot target against the predicted distribution", fontsize=TITLE,
             fontweight="bold", va="center")
    fig.text(0.015, 0.83, r"$H(y, p) = -\sum_c y_c \log p_c = -\log p_{\mathrm{" + target + r"}}$"
             f" = {-math.log(probabilities[classes.index(target)]):.2f}", fontsize=EQUATION, va="center")
    ax = fig.add_axes((0.08, 0.13, 0.88, 0.58))
    x = np.arange(len(classes))
    target_bars = ax.bar(x - 0.2, one_hot, 0.38, color=tint(PALETTE["highlight"], 0.55),
                         edgecolor=PALETTE["highlight"], label=f"target y (one-hot, {target})")
    predicted_bars = ax.bar(x + 0.2, probabilities, 0.38, color=tint(PALETTE["embedding"], 0.45),
                            edgecolor=PALETTE["embedding"], label="predicted p = softmax(z)")
    for bar in target_bars:
        bar.set_gid("target")
    for bar in predicted_bars:
        bar.set_gid("predicted")
    ax.set_xticks(x, classes)
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=SMALL, frameon=False, loc="upper left")
    ax.tick_params(labelsize=SMALL)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# ---------------------------------------------------------------- lessons 6, 7 and the appendices
def _flow(ax, boxes: Sequence[tuple[float, float, float, float, str, str]], fontsize: float = SMALL + 0.5):
    """Boxes (x, y, w, h, text, role) joined left to right by arrows at mid-height."""
    for index, (x, y, w, h, text, role) in enumerate(boxes):
        colour = PALETTE[role]
        _box(ax, x, y, w, h, text, face=tint(colour, 0.25), edge=colour, fontsize=fontsize, gid=role)
        if index:
            px, py, pw, ph, _, _ = boxes[index - 1]
            _arrow(ax, (px + pw, py + ph / 2), (x, y + h / 2))


def transformer_gru_cache(tokens: Sequence[str] = ("[CLS]", "this", "film", "is", "not", "good", "[SEP]"),
                          max_length: int = 9, encoder_name: str = "all-MiniLM-L6-v2", hidden_size: int = 384,
                          n_layers: int = 6) -> Figure:
    """Lesson 6's pipeline: WordPiece ids and the attention mask (1 for a real token, 0 for padding)
    go through the frozen encoder once; its last hidden states [batch, time, hidden] are stored on disk
    (`encode_cached`), and every epoch trains only the GRU head (`GRUHead`: packed GRU -> dropout ->
    linear -> logit) on the cached features."""
    tokens = list(tokens)
    if not tokens or len(tokens) > max_length:
        raise ValueError(f"need 1 to max_length={max_length} tokens, got {len(tokens)}")
    width, height = 10.4, 5.4
    fig, ax = _canvas(width, height)
    _title(ax, "Lesson 6: a frozen transformer, a cache, a trained GRU head", height)
    cell = 0.52
    left = 1.6
    top = height - 0.85
    ax.text(left - 0.12, top - 0.2, "tokens", ha="right", va="center", fontsize=SMALL, color=PALETTE["muted"])
    ax.text(left - 0.12, top - 0.62, "attention_mask", ha="right", va="center", fontsize=SMALL,
            family="monospace", color=PALETTE["muted"])
    for t in range(max_length):
        real = t < len(tokens)
        _cell(ax, left + t * cell * 1.55, top - 0.4, cell * 1.55, 0.4, PALETTE["token"] if real else PALETTE["pad"],
              text=_plain(tokens[t]) if real else "[PAD]", fontsize=8.5, color=None if real else PALETTE["muted"],
              lw=2)
        _cell(ax, left + t * cell * 1.55, top - 0.84, cell * 1.55, 0.4,
              tint(PALETTE["output"], 0.4) if real else "white", text="1" if real else "0", lw=2,
              edge="white" if real else PALETTE["pad"], gid="mask_one" if real else "mask_zero")
    band_y = 1.15
    # region: computed once
    ax.add_patch(FancyBboxPatch((0.15, band_y - 0.5), 5.55, 2.1, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=tint(PALETTE["frozen"], 0.12), edgecolor=PALETTE["frozen"], ls="--",
                                zorder=0.5))
    ax.text(0.3, band_y - 0.3, "computed once, cached (encode_cached)", fontsize=SMALL,
            color=PALETTE["frozen"], fontweight="bold")
    ax.add_patch(FancyBboxPatch((5.95, band_y - 0.5), 4.3, 2.1, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=tint(PALETTE["trained"], 0.1), edgecolor=PALETTE["trained"], ls="--",
                                zorder=0.5))
    ax.text(6.1, band_y - 0.3, "trained every epoch (GRUHead)", fontsize=SMALL, color=PALETTE["trained"],
            fontweight="bold")
    _flow(ax, [
        (0.35, band_y, 1.45, 1.2, f"frozen\nencoder\n{encoder_name}\n{n_layers} layers", "frozen"),
        (2.15, band_y, 1.6, 1.2, f"last_hidden_state\n[batch, time,\n{hidden_size}]", "embedding"),
        (4.1, band_y, 1.4, 1.2, "feature cache\non disk\n(FeatureStore)", "file"),
        (6.15, band_y, 1.35, 1.2, "PackedGRU\n(bidirectional)", "hidden"),
        (7.8, band_y, 0.95, 1.2, "dropout\n→ out", "trained"),
        (9.1, band_y, 0.95, 1.2, "logit", "output"),
    ])
    _arrow(ax, (1.7, top - 0.86), (1.7, band_y + 1.2))
    ax.text(1.82, band_y + 1.72, "input_ids, attention_mask", fontsize=8.5, family="monospace",
            color=PALETTE["muted"])
    ax.text(0.2, 0.2, "requires_grad=False for the encoder: no gradients reach it, so its output is the "
            "same each epoch and can be read from disk", fontsize=SMALL, color=PALETTE["muted"])
    return fig


def serving_path(bundle_files: Sequence[str] = ("tokenizer.json", "vocab.json", "model.onnx", "meta.json"),
                 text: str = "not good at all") -> Figure:
    """Lesson 7's serving path: a web page POSTs texts through API Gateway to the Lambda handler, which
    loads a bundle (the ONNX network, the vocabulary, the tokenizer settings and meta.json with the
    labels) once per container, then per request tokenizes, encodes to padded ids, runs ONNX Runtime
    and turns the output into probabilities (sigmoid or softmax), answering with JSON."""
    bundle_files = list(bundle_files)
    width, height = 10.4, 5.6
    fig, ax = _canvas(width, height)
    _title(ax, "Lesson 7: from a bundle to an answer", height)
    request_y = 3.3
    _box(ax, 0.2, request_y, 1.45, 0.9, "web page\n(website/)", face=tint(PALETTE["embedding"], 0.2),
         edge=PALETTE["embedding"], fontsize=SMALL + 0.5)
    _box(ax, 2.15, request_y, 1.5, 0.9, "API Gateway\nPOST /sentiment", face=tint(PALETTE["frozen"], 0.25),
         edge=PALETTE["frozen"], fontsize=SMALL + 0.5)
    _arrow(ax, (1.65, request_y + 0.6), (2.15, request_y + 0.6))
    _arrow(ax, (2.15, request_y + 0.3), (1.65, request_y + 0.3), color=PALETTE["output"])
    ax.text(0.2, request_y - 0.3, _plain(f'{{"texts": ["{text}"]}}'), fontsize=8.5, family="monospace")
    # the handler
    ax.add_patch(FancyBboxPatch((4.1, 2.35), 6.1, 2.3, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=tint(PALETTE["hidden"], 0.08), edgecolor=PALETTE["hidden"], zorder=0.5))
    ax.text(4.25, 4.4, "Lambda: handler.sentiment(event, context)", fontsize=SMALL + 0.5, family="monospace",
            color=PALETTE["hidden"], fontweight="bold")
    steps = [("tokenize\nTokenizer", 4.3), ("encode\nids, lengths", 5.8), ("ONNX\nRuntime", 7.3),
             ("sigmoid /\nsoftmax", 8.8)]
    for index, (label, x) in enumerate(steps):
        _box(ax, x, 3.2, 1.15, 0.85, label, face="white", edge=PALETTE["hidden"], fontsize=SMALL, gid="step")
        if index:
            _arrow(ax, (x - 0.35, 3.62), (x, 3.62))
    _arrow(ax, (3.65, request_y + 0.45), (4.3, 3.62))
    # bundle files below the handler
    ax.add_patch(FancyBboxPatch((4.1, 0.3), 6.1, 1.55, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=tint(PALETTE["file"], 0.15), edgecolor=PALETTE["file"], zorder=0.5))
    ax.text(4.25, 1.6, "bundle folder (loaded once per container)", fontsize=SMALL, color=PALETTE["muted"])
    feeds = {"tokenizer.json": 4.87, "vocab.json": 6.37, "model.onnx": 7.87, "meta.json": 9.37}
    for index, name in enumerate(bundle_files):
        x = 4.25 + index * 1.5
        _box(ax, x, 0.5, 1.35, 0.8, _plain(name), face=tint(PALETTE["file"], 0.5), edge=PALETTE["file"],
             fontsize=SMALL, gid="bundle_file")
        target = feeds.get(name, x + 0.67)
        _arrow(ax, (x + 0.67, 1.3), (target, 3.2), color=tint(PALETTE["ink"], 0.45), lw=1.0)
    # the answer
    answer = ('{"predictions": [{"label": "negative",\n  "probability": 0.97,\n'
              '  "probabilities": {...}}]}')
    _box(ax, 0.2, 0.45, 3.5, 1.3, "", face=tint(PALETTE["output"], 0.15), edge=PALETTE["output"])
    ax.text(0.35, 1.1, answer, fontsize=8.5, family="monospace", va="center")
    ax.text(0.3, 1.9, "JSON answer (illustrative numbers)", fontsize=SMALL, color=PALETTE["output"])
    _path_arrow(ax, [(9.37, 4.05), (9.37, 4.85), (2.9, 4.85), (2.9, request_y + 0.9)], color=PALETTE["output"])
    _path_arrow(ax, [(2.6, request_y), (2.6, 1.75)], color=PALETTE["output"])
    return fig


def own_dataset_pipeline(path: str = "reviews.csv", text_column: str = "text", label_column: str = "label") -> Figure:
    """Appendix A: your own table through the lessons' pipeline: the file is read by `load_table`
    (CSV, TSV or JSON Lines), split with `stratified_split`, tokenized, a `Vocab` is built from the
    training split's counts, texts become ids, `loaders_for` batches them, and a lesson's model trains."""
    width, height = 10.4, 3.7
    fig, ax = _canvas(width, height)
    _title(ax, "Appendix A: your own dataset through the same pipeline", height)
    y, h = 1.35, 1.1
    _flow(ax, [
        (0.2, y, 1.4, h, _plain(f"{path}\n{text_column}, {label_column}"), "file"),
        (1.95, y, 1.2, h, "load_table\n(read_table)", "embedding"),
        (3.5, y, 1.25, h, "stratified\n_split", "embedding"),
        (5.1, y, 1.05, h, "Tokenizer", "embedding"),
        (6.5, y, 1.05, h, "Vocab\n.from_counts", "embedding"),
        (7.9, y, 1.05, h, "loaders\n_for", "hidden"),
        (9.3, y, 0.95, h, "model\n+ fit", "output"),
    ])
    notes = [(0.9, "one row a text"), (2.55, "TextDataset"), (4.12, "train / valid / test"),
             (5.62, "tokens"), (7.02, "tokens → ids"), (8.42, "padded batches"), (9.77, "lessons 1-5")]
    for x, note in notes:
        ax.text(x, y - 0.2, note, ha="center", va="top", fontsize=8.5, color=PALETTE["muted"])
    ax.text(0.2, 0.35, "the same tokenizer, vocabulary, collate and models as the lessons: only the file changes",
            fontsize=SMALL, color=PALETTE["muted"])
    return fig


def nbsvm(documents: Sequence[Sequence[str]] = (("not", "good"), ("good", "fun"), ("great", "fun"),
                                                ("not", "fun"), ("dull",), ("not", "great", "dull")),
          positive: Sequence[bool] = (False, True, True, False, False, False), alpha: float = 1.0) -> Figure:
    """Appendix B's NB-SVM: the binarized document-term matrix x-hat (1 if a term occurs), counts per
    term over the positive texts (p = alpha + sum) and the negative ones (q = alpha + sum), the
    log-count ratio r = log((p / |p|_1) / (q / |q|_1)) per term (bars: > 0 leans positive), and the
    linear classifier on r * x-hat. TF-IDF + logistic regression uses the same matrix with TF-IDF
    weights instead of r."""
    documents, positive = [list(d) for d in documents], np.asarray(positive, dtype=bool)
    if len(documents) != len(positive) or positive.all() or not positive.any():
        raise ValueError("nbsvm needs one label per document and documents of both labels")
    terms = list(dict.fromkeys(term for document in documents for term in document))
    present = np.array([[1.0 if term in document else 0.0 for term in terms] for document in documents])
    p = alpha + present[positive].sum(axis=0)
    q = alpha + present[~positive].sum(axis=0)
    r = np.log((p / p.sum()) / (q / q.sum()))
    fig = Diagram(figsize=(10.2, 4.6), facecolor="white")
    fig.text(0.015, 0.94, "Appendix B: NB-SVM weighs each term by its log-count ratio", fontsize=TITLE,
             fontweight="bold", va="center")
    fig.text(0.015, 0.84, r"$r = \log\dfrac{p\,/\,\|p\|_1}{q\,/\,\|q\|_1},\quad p = \alpha + \sum_{i:\,y_i=1}"
             r"\hat{x}_i,\quad q = \alpha + \sum_{i:\,y_i=0} \hat{x}_i,\quad \hat{y} = \mathrm{sign}"
             r"(w^\top (r \odot \hat{x}) + b)$", fontsize=EQUATION - 0.5, va="center")
    matrix_ax = fig.add_axes((0.15, 0.12, 0.32, 0.58))
    matrix_ax.imshow(present, cmap="Blues", vmin=-0.3, vmax=1.3, aspect="auto")
    for (row, col), value in np.ndenumerate(present):
        matrix_ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=SMALL,
                       color="white" if value else PALETTE["muted"])
    matrix_ax.set_xticks(range(len(terms)), [_plain(t) for t in terms], fontsize=SMALL)
    matrix_ax.set_yticks(range(len(documents)), [("pos " if y else "neg ") + _plain(" ".join(d))
                                                 for d, y in zip(documents, positive)], fontsize=8.5)
    matrix_ax.set_title(r"binarized document-term matrix $\hat{x}$", fontsize=FONT)
    matrix_ax.tick_params(length=0)
    bar_ax = fig.add_axes((0.58, 0.12, 0.38, 0.58))
    colours = [PALETTE["output"] if value > 0 else PALETTE["highlight"] for value in r]
    bars = bar_ax.barh(range(len(terms)), r, color=[tint(c, 0.55) for c in colours], edgecolor=colours)
    for bar in bars:
        bar.set_gid("ratio")
    bar_ax.set_yticks(range(len(terms)), [_plain(t) for t in terms], fontsize=SMALL)
    bar_ax.invert_yaxis()
    bar_ax.axvline(0, color=PALETTE["ink"], lw=0.8)
    bar_ax.set_title(f"log-count ratio r (alpha = {alpha:g}): > 0 leans positive", fontsize=FONT)
    bar_ax.tick_params(labelsize=SMALL)
    bar_ax.spines[["top", "right"]].set_visible(False)
    fig.text(0.515, 0.41, "→", fontsize=24, ha="center", va="center", color=PALETTE["muted"])
    return fig


def warmup_linear_schedule(total_steps: int, warmup_fraction: float, peak_lr: float) -> np.ndarray:
    """Learning rate at each step 0..total_steps - 1 of transformers' `get_linear_schedule_with_warmup`:
    rising linearly from 0 to `peak_lr` over int(warmup_fraction * total_steps) steps, then falling
    linearly to 0 at `total_steps`."""
    if total_steps < 1 or not 0 <= warmup_fraction < 1:
        raise ValueError("need total_steps >= 1 and 0 <= warmup_fraction < 1")
    warmup = int(warmup_fraction * total_steps)
    steps = np.arange(total_steps, dtype=float)
    rising = steps / max(1, warmup)
    falling = np.maximum(0.0, (total_steps - steps) / max(1, total_steps - warmup))
    return peak_lr * np.where(steps < warmup, rising, falling)


def fine_tuning_layers(n_layers: int = 6, train_layers: int = 3, total_steps: int = 1000,
                       warmup_fraction: float = 0.1, peak_lr: float = 3e-5) -> Figure:
    """Appendix C: the transformer's embeddings and lower `n_layers - train_layers` layers are frozen and
    run once (`lower_layers`, their output cached), the top `train_layers` layers and the classifier
    (`UpperLayersClassifier`: masked mean -> linear) are fine-tuned; right, the learning rate per step:
    linear warm-up over `warmup_fraction` of the steps, then linear decay to 0."""
    if not 0 < train_layers <= n_layers:
        raise ValueError(f"train_layers must be between 1 and n_layers={n_layers}, got {train_layers}")
    fig = Diagram(figsize=(10.2, 5.0), facecolor="white")
    fig.text(0.015, 0.95, "Appendix C: cached lower layers, fine-tuned top layers", fontsize=TITLE,
             fontweight="bold", va="center")
    ax = fig.add_axes((0.0, 0.0, 0.5, 0.9))
    ax.set_xlim(-1.4, 3.9)
    ax.set_ylim(0, 4.5)
    ax.set_aspect("equal")
    ax.axis("off")
    first_trained = n_layers - train_layers
    box_h = min(0.4, 2.9 / (n_layers + 2))
    y = 0.2
    _box(ax, 0.9, y, 2.1, box_h, "embeddings", face=tint(PALETTE["frozen"], 0.3), edge=PALETTE["frozen"],
         fontsize=SMALL, gid="frozen_layer")
    for layer in range(n_layers):
        y += box_h + 0.08
        trained = layer >= first_trained
        role = "trained" if trained else "frozen"
        _box(ax, 0.9, y, 2.1, box_h, f"layer {layer}", face=tint(PALETTE[role], 0.35), edge=PALETTE[role],
             fontsize=SMALL, gid=f"{role}_layer")
        if layer == first_trained - 1:
            cache_y = y + box_h + 0.04
            ax.plot([0.6, 3.3], [cache_y, cache_y], color=PALETTE["file"], lw=3, solid_capstyle="butt")
            ax.text(3.4, cache_y, "cache", va="center", fontsize=SMALL, color=PALETTE["ink"])
    y += box_h + 0.08
    _box(ax, 0.9, y, 2.1, box_h, "masked mean → linear", face=tint(PALETTE["output"], 0.55),
         edge=PALETTE["output"], fontsize=SMALL, gid="trained_layer")
    frozen_top = 0.2 + (first_trained + 1) * (box_h + 0.08) - 0.08
    ax.text(0.75, (0.2 + frozen_top) / 2, f"frozen, run once\n(lower_layers)", ha="right", va="center",
            fontsize=8.5, color=PALETTE["frozen"])
    ax.text(0.75, (frozen_top + y + box_h) / 2, f"fine-tuned\n({train_layers} of {n_layers} + head)",
            ha="right", va="center", fontsize=8.5, color=PALETTE["trained"])
    ax.text(3.1, y + box_h / 2, "logits", va="center", fontsize=SMALL)
    schedule = warmup_linear_schedule(total_steps, warmup_fraction, peak_lr)
    right = fig.add_axes((0.57, 0.15, 0.4, 0.65))
    right.plot(np.arange(total_steps), schedule, color=PALETTE["embedding"], lw=2, gid="schedule")
    warmup = int(warmup_fraction * total_steps)
    right.axvline(warmup, color=PALETTE["muted"], lw=0.8, ls=":")
    right.text(warmup + total_steps * 0.02, peak_lr * 1.02, f"end of warm-up\n(step {warmup})", fontsize=8.5,
               va="bottom", color=PALETTE["muted"])
    right.set_xlabel("optimizer step", fontsize=SMALL)
    right.set_ylabel("learning rate", fontsize=SMALL)
    right.set_ylim(0, peak_lr * 1.3)
    right.set_title("get_linear_schedule_with_warmup", fontsize=FONT, family="monospace")
    right.tick_params(labelsize=SMALL)
    right.spines[["top", "right"]].set_visible(False)
    return fig


# ---------------------------------------------------------------- registry and command line
DIAGRAMS: dict[str, Callable[..., Figure]] = {
    "rnn_unrolled": rnn_unrolled,
    "recurrence_step": recurrence_step,
    "padded_batch": padded_batch,
    "packing": packing,
    "bidirectional": bidirectional,
    "lstm_cell": lstm_cell,
    "dropout": dropout,
    "pretrained_embeddings": pretrained_embeddings,
    "bigrams": bigrams,
    "bag_of_ngrams": bag_of_ngrams,
    "length_mask": length_mask,
    "conv_filters": conv_filters,
    "max_pooling": max_pooling,
    "min_length_padding": min_length_padding,
    "softmax": softmax,
    "cross_entropy": cross_entropy,
    "one_hot_target": one_hot_target,
    "transformer_gru_cache": transformer_gru_cache,
    "serving_path": serving_path,
    "own_dataset_pipeline": own_dataset_pipeline,
    "nbsvm": nbsvm,
    "fine_tuning_layers": fine_tuning_layers,
}

# which notebook (file stem in notebooks/) shows which diagrams
LESSONS: dict[str, tuple[str, ...]] = {
    "01_simple_rnn": ("rnn_unrolled", "recurrence_step", "padded_batch"),
    "02_upgraded_sentiment": ("packing", "bidirectional", "lstm_cell", "dropout", "pretrained_embeddings"),
    "03_faster_sentiment": ("bigrams", "bag_of_ngrams", "length_mask"),
    "04_convolutional_sentiment": ("conv_filters", "max_pooling", "min_length_padding"),
    "05_multiclass_questions": ("softmax", "cross_entropy", "one_hot_target"),
    "06_transformers_sentiment": ("transformer_gru_cache",),
    "07_deployment": ("serving_path",),
    "A_own_dataset": ("own_dataset_pipeline",),
    "B_baselines": ("nbsvm",),
    "C_fine_tuning": ("fine_tuning_layers",),
}


def save_all(out: str | Path, names: Sequence[str] | None = None, dpi: int = 110) -> list[Path]:
    """Write each named diagram (all by default) to `out`/<name>.png; returns the paths written."""
    out = Path(out)
    names = list(names) if names else list(DIAGRAMS)
    unknown = [name for name in names if name not in DIAGRAMS]
    if unknown:
        raise ValueError(f"unknown diagram(s) {unknown}; known: {', '.join(DIAGRAMS)}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = out / f"{name}.png"
        DIAGRAMS[name]().savefig(path, dpi=dpi, facecolor="white")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.diagrams",
                                     description="Write the course's teaching diagrams as PNG files.")
    parser.add_argument("--out", required=True, help="folder for the PNG files (created if missing)")
    parser.add_argument("--dpi", type=int, default=110, help="resolution (default 110)")
    parser.add_argument("names", nargs="*", help=f"diagrams to write (default all): {', '.join(DIAGRAMS)}")
    args = parser.parse_args(argv)
    try:
        paths = save_all(args.out, args.names, args.dpi)
    except (ValueError, OSError) as err:
        parser.exit(2, f"error: {err}\n")
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
