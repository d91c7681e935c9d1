"""Plots the lessons show: learning curves and a confusion matrix (matplotlib), and what they show in words."""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np


def plot_history(history: list[dict], title: str = "", path: str | os.PathLike | None = None):
    """Train and valid loss and accuracy per epoch, side by side; saved as PNG when `path` is given.

    A history without validation (`fit(..., valid_loader=None)`) shows the training curves only.
    """
    epochs = [row["epoch"] for row in history]
    validated = all(row.get("valid_loss") is not None for row in history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "o-"), ("valid", "s--"))[:2 if validated else 1]:
            ax.plot(epochs, [row[f"{split}_{metric}"] for row in history], style, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    if validated:
        best = min(history, key=lambda row: row["valid_loss"])["epoch"]
        axes[0].axvline(best, color="grey", lw=0.8, ls=":")
    fig.suptitle(title or ("Learning curves (dotted line: kept checkpoint)" if validated else "Training curves"))
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
                  labels: list[str] | None = None) -> str:
    """One or two sentences on what this run's plot shows, computed from its numbers.

    `history` (`fit`'s, as `plot_history` draws it): which epoch the validation loss was
    lowest at, whether it rose after that (overfitting) or was still falling at the end,
    and when validation accuracy starts above training accuracy, why. Without validation,
    how the training loss moved. `matrix` with `labels` (`confusion_matrix`'s, as
    `plot_confusion_matrix` draws it): the most frequent confusion and the class recognised
    least often.
    """
    if (history is None) == (matrix is None):
        raise ValueError("describe_plot takes a history or a confusion matrix (with labels), one of them")
    if matrix is not None:
        return _describe_confusion(np.asarray(matrix), labels)
    return _describe_history(history)


def _describe_history(history: list[dict]) -> str:
    if not history:
        raise ValueError("describe_plot: the history is empty (no epoch was trained)")
    first, last = history[0], history[-1]
    if any(row.get("valid_loss") is None for row in history):
        return (f"Training loss went from {first['train_loss']:.3f} to {last['train_loss']:.3f} over "
                f"{len(history)} epoch(s) (training accuracy {last['train_accuracy']:.1%} at the end); without a "
                "validation set the last epoch's weights are kept.")
    if len(history) == 1:
        return (f"One epoch only (validation loss {first['valid_loss']:.3f}, accuracy {first['valid_accuracy']:.1%}): "
                "a single point shows no trend.")
    best = min(history, key=lambda row: row["valid_loss"])
    sentences = []
    if best is last:
        sentences.append(f"Validation loss was lowest at the last epoch, {last['epoch']} ({last['valid_loss']:.3f}, "
                         f"accuracy {last['valid_accuracy']:.1%}): it was still falling, so more epochs might help.")
    else:
        rise = last["valid_loss"] - best["valid_loss"]
        trend = (f"it rose after that, to {last['valid_loss']:.3f} at epoch {last['epoch']}, while training loss "
                 f"kept falling ({best['train_loss']:.3f} to {last['train_loss']:.3f}): the model starts to overfit"
                 if last["train_loss"] < best["train_loss"] else
                 f"after it, it was {last['valid_loss']:.3f} at epoch {last['epoch']}")
        if rise < 0.005:
            trend = f"after it, it stayed within 0.005 of that up to epoch {last['epoch']}: a plateau"
        sentences.append(f"Validation loss was lowest at epoch {best['epoch']} ({best['valid_loss']:.3f}, accuracy "
                         f"{best['valid_accuracy']:.1%}; those are the weights kept); {trend}.")
    if first["valid_accuracy"] > first["train_accuracy"]:
        sentences.append(f"In epoch 1 validation accuracy ({first['valid_accuracy']:.1%}) is above training accuracy "
                         f"({first['train_accuracy']:.1%}): training accuracy is averaged over the epoch while the "
                         "weights were still improving (and with dropout on, where a model has some), validation "
                         "accuracy is measured after it.")
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
