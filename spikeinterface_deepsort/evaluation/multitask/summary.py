"""The run's summary: ``summary.csv``, ``paired.csv``, Markdown tables and a plot, single-task against multi-task per file."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; the benchmark runs on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TRUNK_COLOURS = {"ffn": "tab:blue", "cnn": "tab:orange", "lstm": "tab:green"}
PLOTTED_METRICS = (("accuracy", "Accuracy"), ("mcc", "MCC"))


def markdown_table(summary: pd.DataFrame, metric: str = "accuracy") -> str:
    """Files as rows, models as columns, 'mean ± std' over folds."""
    models = list(dict.fromkeys(summary["model"]))
    datasets = list(dict.fromkeys(summary["dataset"]))
    lines = ["| dataset | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for dataset in datasets:
        cells = []
        for model in models:
            row = summary[(summary["model"] == model) & (summary["dataset"] == dataset)]
            cells.append(f"{row[f'{metric}_mean'].iloc[0]:.3f} ± {row[f'{metric}_std'].iloc[0]:.3f}" if len(row) else "")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_differences(fold_scores: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Multi-task minus single-task ``metric`` per trunk and file, fold by fold (both use the same folds)."""
    rows = []
    for model in dict.fromkeys(fold_scores["model"]):
        if not model.startswith("mtl-") or model.removeprefix("mtl-") not in set(fold_scores["model"]):
            continue
        single = fold_scores[fold_scores["model"] == model.removeprefix("mtl-")].set_index(["dataset", "fold"])[metric]
        multi = fold_scores[fold_scores["model"] == model].set_index(["dataset", "fold"])[metric]
        difference = (multi - single.reindex(multi.index)).groupby(level="dataset", sort=False)
        for dataset, values in difference:
            rows.append({
                "trunk": model.removeprefix("mtl-"), "dataset": dataset, "metric": metric,
                "difference_mean": float(values.mean()), "difference_std": float(values.std(ddof=0)),
                "folds_multitask_better": int((values > 0).sum()), "folds_single_task_better": int((values < 0).sum()),
            })
    return pd.DataFrame(rows)


def plot_summary(summary: pd.DataFrame, path: Path) -> None:
    """Bars per file: one per model, hatched for single-task, solid for multi-task, error bars = std over folds."""
    models = list(dict.fromkeys(summary["model"]))
    datasets = list(dict.fromkeys(summary["dataset"]))
    width = 0.8 / len(models)
    figure, axes = plt.subplots(len(PLOTTED_METRICS), 1, figsize=(max(6, 1.6 * len(datasets)), 3.2 * len(PLOTTED_METRICS)), sharex=True)
    for axis, (metric, label) in zip(np.atleast_1d(axes), PLOTTED_METRICS):
        for position, model in enumerate(models):
            rows = summary[summary["model"] == model].set_index("dataset").reindex(datasets)
            multitask = rows["kind"].iloc[0] == "multi-task"
            axis.bar(
                np.arange(len(datasets)) + (position - (len(models) - 1) / 2) * width,
                rows[f"{metric}_mean"], width, yerr=rows[f"{metric}_std"], capsize=2, label=model,
                color=TRUNK_COLOURS[rows["trunk"].iloc[0]], alpha=1.0 if multitask else 0.45,
                hatch=None if multitask else "//", edgecolor="black", linewidth=0.5,
            )
        axis.set_ylabel(label)
        axis.set_ylim(min(0.0, float((summary[f"{metric}_mean"] - summary[f"{metric}_std"]).min())), 1.2)  # room for the legend
        axis.grid(axis="y", alpha=0.3)
    axes = np.atleast_1d(axes)
    axes[-1].set_xticks(np.arange(len(datasets)), datasets)
    axes[0].legend(ncol=min(len(models), 6), fontsize=8, loc="upper center")
    axes[0].set_title("Single-task (hatched) vs multi-task (solid), mean ± std over test folds")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_summary(summary: pd.DataFrame, fold_scores: pd.DataFrame, output: Path) -> None:
    summary.to_csv(output / "summary.csv", index=False)
    paired = paired_differences(fold_scores)
    paired.to_csv(output / "paired.csv", index=False)
    text = "".join(f"\n### {title}\n\n{markdown_table(summary, metric)}" for metric, title in (
        ("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("macro_f1", "Macro F1"), ("mcc", "MCC")))
    if not paired.empty:
        text += "\n### Multi-task minus single-task accuracy, paired by fold\n\n"
        text += "| trunk | dataset | difference (mean ± std) | folds MTL better / worse |\n|---|---|---|---|\n"
        text += "".join(
            f"| {r.trunk} | {r.dataset} | {r.difference_mean:+.3f} ± {r.difference_std:.3f} | "
            f"{r.folds_multitask_better} / {r.folds_single_task_better} |\n" for r in paired.itertuples()
        )
    (output / "summary.md").write_text(text.lstrip())
    plot_summary(summary, output / "summary.png")
