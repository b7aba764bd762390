"""Paired single-task vs multi-task differences, the Markdown tables and the plot."""

import pandas as pd

from spikeinterface_deepsort.evaluation.multitask.summary import markdown_table, paired_differences, write_summary


def _folds():
    rows = []
    for model, accuracies in {"cnn": [0.6, 0.7, 0.8], "mtl-cnn": [0.7, 0.7, 0.9], "mtl-ffn": [0.5, 0.5, 0.5]}.items():
        rows += [{"model": model, "dataset": "A2", "fold": fold, "accuracy": a} for fold, a in enumerate(accuracies)]
    return pd.DataFrame(rows)


def _summary():
    rows = []
    for model, kind, trunk in (("cnn", "single-task", "cnn"), ("mtl-cnn", "multi-task", "cnn")):
        row = {"model": model, "kind": kind, "trunk": trunk, "dataset": "A2", "n_folds": 3}
        for metric in ("accuracy", "balanced_accuracy", "macro_f1", "mcc"):
            row[f"{metric}_mean"], row[f"{metric}_std"] = 0.8, 0.05
        rows.append(row)
    return pd.DataFrame(rows)


def test_paired_differences_fold_by_fold():
    paired = paired_differences(_folds())
    assert len(paired) == 1  # mtl-ffn has no single-task partner here
    row = paired.iloc[0]
    assert row["trunk"] == "cnn" and abs(row["difference_mean"] - 0.2 / 3) < 1e-9
    assert row["folds_multitask_better"] == 2 and row["folds_single_task_better"] == 0


def test_written_files(tmp_path):
    assert "| A2 | 0.800 ± 0.050 | 0.800 ± 0.050 |" in markdown_table(_summary())
    write_summary(_summary(), _folds(), tmp_path)
    assert (tmp_path / "summary.png").stat().st_size > 0
    assert "paired by fold" in (tmp_path / "summary.md").read_text()
    assert len(pd.read_csv(tmp_path / "paired.csv")) == 1
