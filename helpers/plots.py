"""Plots the lessons show: learning curves and a confusion matrix (matplotlib)."""
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
