"""Phase 1's figures, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_training_curves(history: list[dict], path: Path, best_epoch: int | None = None) -> None:
    """Loss and accuracy per epoch, training beside validation; a grey line at the weights kept."""
    log = pd.DataFrame(history)
    fig, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("val", "--")):
        if f"{split}_loss" in log:
            loss_axis.plot(log["epoch"], log[f"{split}_loss"], style, marker="o", label=split)
            accuracy_axis.plot(log["epoch"], log[f"{split}_accuracy"], style, marker="o", label=split)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for axis in (loss_axis, accuracy_axis):
        if best_epoch is not None and best_epoch > 0:
            axis.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion_matrix(matrix: pd.DataFrame, path: Path, title: str = "Test set, row-normalised") -> None:
    """Heat map of a row-normalised confusion matrix, each cell annotated when there is room."""
    n = len(matrix)
    fig, axis = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.6 * n))
    image = axis.imshow(matrix.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(np.arange(n), matrix.columns, rotation=45, ha="right")
    axis.set_yticks(np.arange(n), matrix.index)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    if n <= 20:
        for (row, column), value in np.ndenumerate(matrix.to_numpy()):
            axis.text(column, row, f"{value:.2f}", ha="center", va="center",
                      color="white" if value > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_agreement_matrix(scores: pd.DataFrame, path: Path, reference_name: str, sorting_name: str) -> None:
    """Agreement scores, reference units as rows and sorting units as columns, best matches on the diagonal."""
    rows = scores.max(axis=1).sort_values(ascending=False).index
    columns = list(dict.fromkeys(list(scores.loc[rows].idxmax(axis=1)) + list(scores.columns)))
    ordered = scores.loc[rows, columns].to_numpy()
    n_rows, n_columns = ordered.shape
    fig, axis = plt.subplots(figsize=(min(2 + 0.4 * n_columns, 20), min(1.5 + 0.4 * n_rows, 20)))
    image = axis.imshow(ordered, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    if max(n_rows, n_columns) <= 40:
        axis.set_xticks(np.arange(n_columns), [str(c) for c in columns], rotation=90)
        axis.set_yticks(np.arange(n_rows), [str(r) for r in rows])
    if max(n_rows, n_columns) <= 15:
        for (row, column), value in np.ndenumerate(ordered):
            if value > 0.05:
                axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value > 0.5 else "black")
    axis.set(xlabel=f"{sorting_name} units", ylabel=f"{reference_name} units", title="Agreement")
    fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
