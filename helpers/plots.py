"""Plots the lessons show: learning curves and a confusion matrix (matplotlib), and what they show in words."""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import PercentFormatter


# What this course calls noise in a learning curve: a change in validation loss smaller than FLAT_LOSS is
# "flat", and a gap between accuracies smaller than NOISE_ACCURACY (1 point) is not explained as an effect.
# On lesson 1's 7,500 validation reviews one standard error of an accuracy near 50% is 0.6 points.
FLAT_LOSS = 0.01
NOISE_ACCURACY = 0.01
# Smallest span of a plot's y-axis (loss, accuracy as a fraction), so that noise does not fill the panel.
MIN_SPAN = {"loss": 0.1, "accuracy": 0.1}


def chance_level(classes: int) -> dict[str, float]:
    """Loss and accuracy of a model that gives each of `classes` classes the same probability:
    cross-entropy ln(classes) (ln 2 = 0.693 for two), accuracy 1/classes on a balanced set."""
    if classes < 2:
        raise ValueError(f"chance_level: at least 2 classes are needed, got {classes}")
    return {"loss": float(np.log(classes)), "accuracy": 1.0 / classes}


def _axis_limits(values: list[float], min_span: float, also: float | None = None) -> tuple[float, float]:
    """y-limits holding `values` (and `also`, a chance level), at least `min_span` wide, with a margin."""
    low, high = min(values), max(values)
    if also is not None:
        low, high = min(low, also), max(high, also)
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    margin = 0.05 * (high - low)
    return low - margin, high + margin


def plot_history(history: list[dict], title: str = "", path: str | os.PathLike | None = None, *,
                 classes: int | None = None):
    """Train and valid loss and accuracy per epoch, side by side; saved as PNG when `path` is given.

    The dotted vertical line marks the kept epoch (lowest validation loss; its legend says so).
    `classes`: draw the chance level (`chance_level`: loss ln(classes), accuracy 1/classes) as a
    dash-dotted line and keep it in view. Each y-axis spans at least `MIN_SPAN`, so a change of a
    few thousandths does not fill the panel. A history without validation
    (`fit(..., valid_loader=None)`) shows the training curves only.
    """
    if not history:
        raise ValueError("plot_history: the history is empty (no epoch was trained)")
    epochs = [row["epoch"] for row in history]
    validated = all(row.get("valid_loss") is not None for row in history)
    splits = ("train", "valid") if validated else ("train",)
    chance = chance_level(classes) if classes is not None else None
    best = min(history, key=lambda row: row["valid_loss"])["epoch"] if validated else None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        values = []
        for split, style in zip(splits, ("o-", "s--")):
            column = [row[f"{split}_{metric}"] for row in history]
            values += column
            ax.plot(epochs, column, style, label=split)
        if chance is not None:
            level = chance[metric]
            text = f"ln {classes} = {level:.3f}" if metric == "loss" else f"{level:.0%}"
            ax.axhline(level, color="tab:red", lw=1, ls="-.", label=f"chance ({text})")
        if best is not None:
            ax.axvline(best, color="grey", lw=0.8, ls=":", label=f"kept: epoch {best} (lowest valid loss)")
        ax.set_ylim(*_axis_limits(values, MIN_SPAN[metric], chance[metric] if chance else None))
        if metric == "accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)  # below: never on a curve
    fig.suptitle(title or ("Learning curves" if validated else "Training curves"))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts int64 [n_classes, n_classes]: row = true class, column = predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], title: str = "Confusion matrix",
                          path: str | os.PathLike | None = None):
    """Heat map of a confusion matrix with counts in the cells; saved as PNG when `path` is given."""
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def describe_plot(history: list[dict] | None = None, *, matrix: np.ndarray | None = None,
                  labels: list[str] | None = None, classes: int | None = None, flat: float = FLAT_LOSS,
                  noise: float = NOISE_ACCURACY) -> str:
    """One to three sentences on what this run's plot shows, computed from its numbers.

    `history` (`fit`'s, as `plot_history` draws it): which epoch the validation loss was
    lowest at and how it moved: a change smaller than `flat` (default `FLAT_LOSS`, 0.01) is
    called flat, whether over the whole run, in the last epoch or after the kept epoch; a rise
    after the kept epoch while training loss falls is called overfitting. When validation
    accuracy starts more than `noise` (default 1 point) above training accuracy, why. With
    `classes`, the kept epoch's validation loss against chance (ln(classes)). Without
    validation, how the training loss moved. `matrix` with `labels` (`confusion_matrix`'s, as
    `plot_confusion_matrix` draws it): the most frequent confusion and the class recognised
    least often.
    """
    if (history is None) == (matrix is None):
        raise ValueError("describe_plot takes a history or a confusion matrix (with labels), one of them")
    if matrix is not None:
        return _describe_confusion(np.asarray(matrix), labels)
    if flat <= 0 or noise < 0:
        raise ValueError(f"describe_plot: flat must be above 0 and noise at least 0, got flat={flat}, noise={noise}")
    return _describe_history(history, classes, flat, noise)


def _describe_history(history: list[dict], classes: int | None, flat: float, noise: float) -> str:
    if not history:
        raise ValueError("describe_plot: the history is empty (no epoch was trained)")
    first, last = history[0], history[-1]
    if any(row.get("valid_loss") is None for row in history):
        return (f"Training loss went from {first['train_loss']:.3f} to {last['train_loss']:.3f} over "
                f"{len(history)} epoch(s) (training accuracy {last['train_accuracy']:.1%} at the end); without a "
                "validation set the last epoch's weights are kept.")
    best = min(history, key=lambda row: row["valid_loss"])
    overall = last["valid_loss"] - first["valid_loss"]
    sentences = []
    if len(history) == 1:
        sentences.append(f"One epoch only (validation loss {first['valid_loss']:.3f}, accuracy "
                         f"{first['valid_accuracy']:.1%}): a single point shows no trend.")
    elif abs(overall) < flat:
        sentences.append(
            f"Validation loss changed by {overall:+.4f} from epoch {first['epoch']} to epoch {last['epoch']} "
            f"({first['valid_loss']:.4f} to {last['valid_loss']:.4f}), less than {flat}: flat. The lowest value, at "
            f"epoch {best['epoch']} (accuracy {best['valid_accuracy']:.1%}; those are the weights kept), "
            "is noise, not a trend.")
    elif best is last:
        step = history[-2]["valid_loss"] - last["valid_loss"]
        ending = (f"it fell by {step:.4f} in the last epoch, so more epochs might help" if step >= flat else
                  f"it fell by only {step:.4f} in the last epoch, less than {flat}: it has flattened out")
        sentences.append(f"Validation loss was lowest at the last epoch, {last['epoch']} ({last['valid_loss']:.3f}, "
                         f"accuracy {last['valid_accuracy']:.1%}): {ending}.")
    else:
        rise = last["valid_loss"] - best["valid_loss"]
        if rise < flat:
            trend = (f"after it, it stayed within {flat} of that up to epoch {last['epoch']} ({rise:+.4f}): "
                     "flat, a plateau")
        elif last["train_loss"] < best["train_loss"]:
            trend = (f"it rose after that, to {last['valid_loss']:.3f} at epoch {last['epoch']}, while training loss "
                     f"kept falling ({best['train_loss']:.3f} to {last['train_loss']:.3f}): the model starts to overfit")
        else:
            trend = f"after it, it rose to {last['valid_loss']:.3f} at epoch {last['epoch']}"
        sentences.append(f"Validation loss was lowest at epoch {best['epoch']} ({best['valid_loss']:.3f}, accuracy "
                         f"{best['valid_accuracy']:.1%}; those are the weights kept); {trend}.")
    if classes is not None:
        chance = chance_level(classes)["loss"]
        above = best["valid_loss"] - chance
        verdict = (f"within {flat} of it: no better than guessing" if abs(above) < flat else
                   f"{-above:.3f} below it" if above < 0 else f"{above:.3f} above it: worse than guessing")
        sentences.append(f"Chance (the same probability for all {classes} classes) has loss ln {classes} = "
                         f"{chance:.3f}; the kept epoch's validation loss is {best['valid_loss']:.3f}, {verdict}.")
    gap = first["valid_accuracy"] - first["train_accuracy"]
    if gap > noise:
        sentences.append(f"In epoch 1 validation accuracy ({first['valid_accuracy']:.1%}) is {100 * gap:.1f} points "
                         f"above training accuracy ({first['train_accuracy']:.1%}), more than {100 * noise:g} point(s): training accuracy is "
                         "averaged over the epoch while the weights were still improving (and with dropout on, where "
                         "a model has some), validation accuracy is measured after it.")
    return " ".join(sentences)


def _describe_confusion(matrix: np.ndarray, labels: list[str] | None) -> str:
    n_classes = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != n_classes or labels is None or len(labels) != n_classes:
        raise ValueError(f"describe_plot: a square confusion matrix and one label per row are needed, got shape "
                         f"{matrix.shape} and {None if labels is None else len(labels)} labels")
    total = int(matrix.sum())
    if total == 0:
        return "The confusion matrix is empty: nothing was predicted."
    correct = int(np.trace(matrix))
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    sentences = [f"{correct} of {total} right ({correct / total:.1%})."]
    if errors.sum():
        true, predicted = np.unravel_index(np.argmax(errors), errors.shape)
        sentences.append(f"Most confused: {labels[true]} labelled {labels[predicted]} ({errors[true, predicted]} "
                         f"of {matrix[true].sum()} {labels[true]})")
        present = [i for i in range(n_classes) if matrix[i].sum()]
        worst = min(present, key=lambda i: matrix[i, i] / matrix[i].sum())
        sentences[-1] += (f"; recognised least often: {labels[worst]} ({matrix[worst, worst]} of "
                          f"{matrix[worst].sum()}, {matrix[worst, worst] / matrix[worst].sum():.0%}).")
    return " ".join(sentences)
