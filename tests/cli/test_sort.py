"""The `deepspikesort` command line: sort, demo, params, and one-line errors."""

import json
import subprocess
import sys

import pytest

from spikeinterface_deepsort.cli.main import main


def test_params_prints_the_table(capsys):
    assert main(["params"]) == 0
    assert "`detect_threshold`" in capsys.readouterr().out


def test_sort_a_saved_recording_folder(small_case, tmp_path, capsys):
    recording, _ = small_case
    saved = recording.save(folder=tmp_path / "rec", n_jobs=1, progress_bar=False)
    code = main(["-q", "sort", str(tmp_path / "rec"), "--output", str(tmp_path / "out"),
                 "--param", "max_rounds=2", "--param", "steps_per_round=30", "--param", "seed=1"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "sorter_output" / "sorting").is_dir()
    params = json.loads((tmp_path / "out" / "spikeinterface_params.json").read_text())["sorter_params"]
    assert params["max_rounds"] == 2 and params["seed"] == 1
    assert "units" in capsys.readouterr().out
    del saved


def test_existing_output_is_refused_in_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "spikeinterface_deepsort.cli", "sort", str(tmp_path),
                             "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if "Warning" not in line]
    assert len(lines) == 1 and "already exists" in lines[0] and "another output folder" in lines[0]


@pytest.mark.parametrize("argument, fragment", [("detect_threshold=high", "must be of type"), ("bogus=1", "Unknown parameter")])
def test_bad_param_is_refused_before_loading(tmp_path, capsys, argument, fragment):
    code = main(["sort", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--param", argument])
    assert code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_recording_path_is_reported(tmp_path, capsys):
    assert main(["sort", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_demo_prints_the_score_and_saves_figures(tmp_path, capsys):
    code = main(["-q", "demo", "--output", str(tmp_path / "demo"), "--num-channels", "8", "--num-units", "4",
                 "--duration", "20", "--param", "max_rounds=2", "--param", "steps_per_round=30"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("mean accuracy", "mean recall", "mean precision", "well detected"):
        assert word in out
    score = json.loads((tmp_path / "demo" / "score.json").read_text())
    assert score["mean_accuracy"] > 0.5
    assert (tmp_path / "demo" / "accuracy_vs_snr.png").exists() and (tmp_path / "demo" / "agreement_matrix.png").exists()
