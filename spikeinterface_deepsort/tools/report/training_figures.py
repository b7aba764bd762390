"""The report's figures of DeepCluster: what the training rounds did, and the learned embedding.

They read the sorter folder's ``deepcluster/`` (``deepcluster_history.csv``: one row per
round; ``deepcluster_checkpoint.pt``: the trained network and the last round's
pseudo-labels; ``deepcluster_steps.csv`` where the sort saved it: the loss of every
optimiser step, columns ``round, step, loss``), the snippets and the peaks' labels.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from .unit_figures import FONT, Figure, save

logger = logging.getLogger("spikeinterface_deepsort.tools.report.build")

MAX_EMBEDDED_PEAKS = 5000
OUTLIER_COLOR = "#c8c8c8"
DROPPED_COLOR = "#6e6e6e"


def _read_csv(path: Path, integer_columns=("round", "n_clusters", "step")) -> list[dict]:
    def number(key, text):
        if text in ("", None):
            return None
        return int(float(text)) if key in integer_columns else float(text)

    with open(path, newline="") as f:
        return [{key: number(key, value) for key, value in row.items()} for row in csv.DictReader(f)]


def deepcluster_figure(sorter_output: Path, folder: Path, params: dict) -> list[Figure]:
    """The training figure (:func:`training_figure`) of the sort in ``sorter_output``, saved in ``folder``."""
    from ...learning.training import load_checkpoint

    deepcluster = sorter_output / "deepcluster"
    if not (deepcluster / "deepcluster_history.csv").exists():
        logger.info("report: no DeepCluster history in %s; training figure skipped", deepcluster)
        return []
    history = _read_csv(deepcluster / "deepcluster_history.csv")
    if not history:
        return []
    steps = _read_csv(deepcluster / "deepcluster_steps.csv") if (deepcluster / "deepcluster_steps.csv").exists() else []
    state = load_checkpoint(deepcluster / "deepcluster_checkpoint.pt")
    pseudo_labels = None if state is None else np.asarray(state["labels"])
    width = save(training_figure(history, steps, pseudo_labels, params.get("nmi_stop")),
                 folder / "deepcluster_history.png")
    last = history[-1]
    rounds = len(history)
    caption = (f"{rounds} round{'s' if rounds != 1 else ''} of {params.get('steps_per_round')} optimiser steps, "
               f"{last['n_clusters']} k-means clusters per round. Left: cross-entropy loss of the CNN on the "
               "round's pseudo-labels")
    caption += (", step by step (thin) and smoothed over 10 steps (thick). " if steps else
                ", averaged over each round (this sort saved no per-step loss). ")
    caption += ("Middle: how many training peaks k-means put in each pseudo-label cluster of the last round; "
                "the batches draw clusters uniformly, so small clusters weigh as much as large ones. ")
    caption += ("Right: normalised mutual information between consecutive rounds' pseudo-labels; rounds stop "
                "when it exceeds nmi_stop or rises by less than 0.01." if rounds > 1 else
                "With one round (max_rounds=1, the default) there is no NMI between rounds to show.")
    if state is not None and state.get("finished"):
        caption += " The last round found the assignments settled and did not train (no loss)."
    return [Figure("deepcluster_history.png", "DeepCluster training", caption, width)]


def training_figure(history: list[dict], steps: list[dict], pseudo_labels: np.ndarray | None,
                    nmi_stop: float | None):
    """Loss (per step where ``steps`` has it, else per round), the pseudo-label cluster sizes and, with
    two rounds or more, the NMI between consecutive rounds."""
    import matplotlib.pyplot as plt

    with_nmi = len(history) > 1
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(1, 3 if with_nmi else 2, figsize=(15 if with_nmi else 11, 3.8))
        _plot_loss(axes[0], history, steps)
        if pseudo_labels is not None:
            _plot_cluster_sizes(axes[1], pseudo_labels, history[-1]["round"])
        else:
            axes[1].set_axis_off()
        if with_nmi:
            _plot_nmi(axes[2], history, nmi_stop)
        fig.tight_layout()
    return fig


def _plot_loss(ax, history: list[dict], steps: list[dict]) -> None:
    if steps:
        start = 0
        for round_index in sorted({row["round"] for row in steps}):
            loss = np.array([row["loss"] for row in steps if row["round"] == round_index])
            x = start + np.arange(1, len(loss) + 1)
            ax.plot(x, loss, color="tab:blue", lw=0.6, alpha=0.5)
            window = min(10, len(loss))
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax.plot(x[window - 1:], smooth, color="tab:blue", lw=2)
            if start:
                ax.axvline(start + 0.5, color="grey", ls=":", lw=1)
            ax.text(start + 1, 0.98, f"round {round_index}", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
            start += len(loss)
        ax.set(xlabel="optimiser step", title="Training loss per step")
    else:
        trained = [row for row in history if row.get("train_loss") is not None]
        ax.plot([r["round"] for r in trained], [r["train_loss"] for r in trained], "o-", color="tab:blue", ms=7)
        _round_axis(ax, history)
        ax.set(title="Training loss, mean over each round")
    ax.set_ylabel("cross-entropy on the pseudo-labels")
    ax.set_ylim(bottom=0)


def _plot_cluster_sizes(ax, pseudo_labels: np.ndarray, round_index: int) -> None:
    sizes = np.sort(np.bincount(pseudo_labels))[::-1]
    ax.bar(np.arange(1, len(sizes) + 1), sizes, color="tab:purple", width=0.8)
    ax.axhline(len(pseudo_labels) / len(sizes), color="black", ls="--", lw=1)
    ax.text(len(sizes) + 0.4, len(pseudo_labels) / len(sizes), " equal sizes", va="bottom", ha="right", fontsize=9)
    ax.set(xlabel="pseudo-label cluster (largest first)", ylabel="training peaks",
           title=f"Round {round_index}: {len(sizes)} clusters of {len(pseudo_labels)} peaks")
    if len(sizes) <= 30:
        ax.set_xticks(np.arange(1, len(sizes) + 1))


def _plot_nmi(ax, history: list[dict], nmi_stop: float | None) -> None:
    nmi = [(row["round"], row["nmi"]) for row in history if row.get("nmi") is not None]
    if nmi:
        ax.plot(*zip(*nmi), "o-", color="tab:green", ms=7)
    if nmi_stop is not None:
        ax.axhline(nmi_stop, color="grey", ls=":")
        ax.text(0.02, nmi_stop, f"nmi_stop = {nmi_stop:g}", transform=ax.get_yaxis_transform(), va="bottom", fontsize=9)
    ax.set(ylabel="NMI with the previous round", title="Stability of the pseudo-labels", ylim=(0, 1.05))
    _round_axis(ax, history)


def _round_axis(ax, history: list[dict]) -> None:
    rounds = [row["round"] for row in history]
    ax.set_xticks(rounds)
    ax.set(xlabel="round", xlim=(min(rounds) - 0.5, max(rounds) + 0.5))


def embedding_figure(sorter_output: Path, folder: Path, params: dict, colors: dict) -> list[Figure]:
    """The learned embedding of (a subsample of) the peaks, projected on two principal components."""
    import torch
    from sklearn.decomposition import PCA

    from ...stages.deepcluster import embed_snippets, load_trained_model
    from ...stages.snippets import SnippetStore

    checkpoint = sorter_output / "deepcluster" / "deepcluster_checkpoint.pt"
    labels_path = sorter_output / "unit_labels.npy"  # after merging: the final units' ids
    if not labels_path.exists():
        labels_path = sorter_output / "peak_labels.npy"
    if not (checkpoint.exists() and labels_path.exists() and SnippetStore.is_complete(sorter_output / "snippets")):
        logger.info("report: no trained model, snippets or peak labels in %s; embedding figure skipped", sorter_output)
        return []
    store = SnippetStore.load(sorter_output / "snippets")
    model = load_trained_model(checkpoint.parent)
    peak_labels = np.load(labels_path)
    if model is None or len(peak_labels) != len(store) or len(store) < 3:
        return []
    rng = np.random.default_rng(params["seed"])
    indices = np.arange(len(store))
    if len(indices) > MAX_EMBEDDED_PEAKS:
        indices = np.sort(rng.choice(indices, size=MAX_EMBEDDED_PEAKS, replace=False))
    with torch.no_grad():
        embedding = embed_snippets(model, store, indices, params.get("batch_size", 256), torch.device("cpu"))
    projected = PCA(n_components=2, random_state=0).fit_transform(embedding)
    width = save(embedding_plot(projected, peak_labels[indices], colors), folder / "embedding.png")
    subsample = " (a random subsample)" if len(indices) < len(store) else ""
    return [Figure("embedding.png", "Learned embedding",
                   f"The {model.encoder.embedding_dim}-D embedding the DeepCluster-trained CNN gives the snippets of "
                   f"{len(indices)} detected peaks{subsample}, projected on its first two principal components. "
                   "Each peak is coloured by the unit it was given when units were formed and over-split ones "
                   "merged, with the unit's id at its centre; light grey, small and underneath: outliers, that "
                   "HDBSCAN gave no unit; dark grey: units dropped before matching (template SNR below "
                   "min_template_snr). Units that overlap here may still be told apart by their position on "
                   "the probe.", width)]


def embedding_plot(projected: np.ndarray, labels: np.ndarray, colors: dict):
    """Units in their colours with their ids at their centres, over the outliers (small, light, underneath)
    and the peaks of units dropped before matching."""
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt

    by_value = {}  # the peaks' labels are integers; the Sorting's unit ids may be integers or their strings
    for unit, color in colors.items():
        try:
            by_value[int(unit)] = color
        except (TypeError, ValueError):
            continue
    outliers = labels < 0
    dropped = ~outliers & ~np.isin(labels, list(by_value))
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(8.5, 6.5))
        handles = []
        if outliers.any():
            handles.append(ax.scatter(*projected[outliers].T, s=2, color=OUTLIER_COLOR, alpha=0.5, lw=0, zorder=1,
                                      rasterized=True, label=f"outliers ({outliers.sum()})"))
        if dropped.any():
            handles.append(ax.scatter(*projected[dropped].T, s=3, color=DROPPED_COLOR, alpha=0.6, lw=0, zorder=2,
                                      rasterized=True, label=f"dropped units ({dropped.sum()})"))
        for unit, color in by_value.items():
            members = labels == unit
            if not members.any():
                continue
            handles.append(ax.scatter(*projected[members].T, s=7, color=color, alpha=0.8, lw=0, zorder=3,
                                      rasterized=True, label=f"unit {unit}"))
            centre = np.median(projected[members], axis=0)
            ax.text(*centre, str(unit), fontsize=10, fontweight="bold", ha="center", va="center", zorder=5,
                    path_effects=[pe.withStroke(linewidth=3, foreground="white")])
        ax.set(xlabel="PC 1 of the embedding (a.u.)", ylabel="PC 2 of the embedding (a.u.)",
               title=f"Learned embedding of {len(labels)} peaks")
        if len(handles) <= 32:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), markerscale=3, frameon=False,
                      ncols=1 if len(handles) <= 16 else 2)
        fig.tight_layout()
    return fig
