"""``deepspikesort make-csv-datasets`` and a tiny end-to-end ``deepspikesort multitask``."""

import pandas as pd
import pytest

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.evaluation.multitask.synthetic import DatasetSpec, write_csv_datasets

TINY = (DatasetSpec("T1", {"a": 20, "b": 20}, 0.8), DatasetSpec("T2", {"a": 12, "b": 12, "c": 12}, 0.6))


def test_make_csv_datasets(tmp_path, capsys):
    assert main(["make-csv-datasets", str(tmp_path), "--seed", "2"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted(f"{n}.csv" for n in ("A2", "A3", "A4", "A12", "A21"))
    assert "A12.csv" in capsys.readouterr().out


def test_multitask_writes_every_file(tmp_path):
    write_csv_datasets(tmp_path / "data", specs=TINY)
    out = tmp_path / "out"
    argv = ["-q", "multitask", "--data", str(tmp_path / "data"), "--output", str(out), "--models", "cnn,mtl-lstm",
            "--folds", "3", "--trials", "2", "--epochs", "2", "--patience", "1", "--class-weights", "balanced",
            "--task-weights", "T2=2", "--normalisation", "search"]
    assert main(argv) == 0
    for model in ("cnn", "mtl-lstm"):
        for name in ("best.csv", "folds.csv", "trials.csv", "per_dataset/T1.csv", "per_dataset/T2.csv"):
            assert (out / model / name).is_file(), (model, name)
    assert (out / "optuna.db").is_file() and (out / "summary.png").stat().st_size > 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
    assert {"accuracy_mean", "accuracy_std", "balanced_accuracy_mean", "macro_f1_mean", "mcc_mean", "mcc_std"} <= set(summary.columns)
    assert set(summary["kind"]) == {"single-task", "multi-task"}
    per_class = pd.read_csv(out / "cnn" / "per_dataset" / "T2.csv")
    assert set(per_class["class"]) == {"all", "a", "b", "c"} and set(per_class["fold"]) == {0, 1, 2}
    assert "normalisation" in pd.read_csv(out / "cnn" / "trials.csv").columns
    assert "| T1 |" in (out / "summary.md").read_text()


def test_user_errors_exit_with_status_2(tmp_path, capsys):
    (tmp_path / "A2.csv").write_text(",0,1,2,3,label\n0,1,2,3,4,a\n")
    assert main(["multitask", "--data", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "no column 'track'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["multitask", "--data", str(tmp_path), "--output", "x", "--models", "svm"])
    with pytest.raises(SystemExit):
        main(["multitask", "--data", str(tmp_path), "--output", "x", "--task-weights", "A2=heavy"])
