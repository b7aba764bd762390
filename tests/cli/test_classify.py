"""`deepspikesort classify` and `deepspikesort compare`: their options, and errors as one line with status 2.

What the classification and the comparison compute is tested in tests/evaluation/classification/.
"""

import numpy as np
import pytest

from spikeinterface_deepsort.cli.main import main


def _one_error_line(capsys, command):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"deepspikesort {command}: error:") and len(err.splitlines()) == 1, err
    return err


def test_cli_reports_a_bad_input_as_one_line_with_status_2(tmp_path, capsys):
    code = main(["classify", "--demo", "--units", "9", "--output", str(tmp_path), "--device", "cpu"])
    assert code == 2
    assert "Ask for fewer units" in _one_error_line(capsys, "classify")


def test_the_reference_goes_with_a_recording_and_never_with_the_demo(tmp_path, capsys):
    assert main(["classify", "--demo", "--reference", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "drop --reference" in _one_error_line(capsys, "classify")
    assert main(["classify", "--recording", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "--reference is required with --recording" in _one_error_line(capsys, "classify")
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse: one of the two, not both
        main(["classify", "--demo", "--recording", str(tmp_path)])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_raw_recording_needs_its_options_named(tmp_path, capsys):
    np.zeros((3000, 4), dtype="int16").tofile(tmp_path / "rec.dat")
    assert main(["classify", "--recording", str(tmp_path / "rec.dat"), "--reference", str(tmp_path),
                 "--output", str(tmp_path / "o")]) == 2
    err = _one_error_line(capsys, "classify")
    assert "--sampling-frequency, --num-channels, --dtype" in err and "--probe" in err


def test_compare_names_a_missing_sorting(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "mine"), str(tmp_path / "kilosort"), "--output", str(tmp_path / "o")]) == 2
    err = _one_error_line(capsys, "compare")
    assert "does not exist" in err and "Kilosort/Phy folder" in err
    assert not (tmp_path / "o").exists()
