"""The mistakes users make, through the command line and through ``run_sorter``.

Each test makes one mistake in a folder of the user's own files, and asserts the message
(it names the problem and the fix, in the shell's terms for the CLI and in working Python
for the API), the exit status, and that every file of the user's is byte-identical
afterwards. The CLI runs in this process: an exception that is not one of the package's
own would end the test with a traceback, as it would end the user's command.
"""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import probeinterface as pi
import pytest
import spikeinterface.core as sic
import spikeinterface.sorters as ss

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import OutputFolderError, ParameterError, RecordingError
from spikeinterface_deepsort.validation import PROBE_ADVICE, check_recording

from helpers import tree_snapshot

FS = 25000.0
FAST = ["--param", "steps_per_round=30", "--param", "max_training_peaks=2000"]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's folder: notes, a script, a raw int16 tetrode file (8 s), the same samples as
    float32, the probe written by probeinterface, and a saved SpikeInterface recording."""
    folder = tmp_path_factory.mktemp("user_files")
    recording, _ = sic.generate_ground_truth_recording(durations=[8.0], sampling_frequency=FS, num_channels=4,
                                                        num_units=4, seed=5)
    traces = recording.get_traces()
    (traces * 10).astype("int16").tofile(folder / "rec.bin")
    traces.astype("float32").tofile(folder / "rec_float32.bin")
    probe = pi.generate_tetrode()
    probe.set_device_channel_indices(np.arange(4))
    pi.write_probeinterface(folder / "probe.json", probe)
    (folder / "notes.txt").write_text("my notes")
    (folder / "sub").mkdir()
    (folder / "sub" / "analysis.py").write_text("print('my analysis')")
    saved = sic.read_binary(folder / "rec.bin", sampling_frequency=FS, dtype="int16", num_channels=4)
    saved.set_probe(probe)
    saved.save(folder=folder / "saved_recording", n_jobs=1, progress_bar=False)
    return folder


@pytest.fixture
def workspace(user_files, tmp_path):
    """A fresh copy of the user's files for one test, and its snapshot before the test."""
    folder = tmp_path / "work"
    shutil.copytree(user_files, folder)
    return folder, tree_snapshot(folder)


def raw_args(folder, name="rec.bin", dtype="int16", channels="4", probe="probe.json"):
    return [str(folder / name), "--sampling-frequency", str(FS), "--num-channels", channels, "--dtype", dtype,
            "--probe", str(folder / probe)]


def refused(capsys, argv, *fragments):
    """Run the CLI; it must exit 2 with one error line holding every fragment."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("deepspikesort") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# --- the command line: outputs ---------------------------------------------------------------

def test_overwrite_refuses_a_users_folder(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "sub"), "--overwrite"],
            "--overwrite refused", "did not write")
    assert tree_snapshot(folder) == before


def test_overwrite_refuses_the_folder_holding_the_input(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder), "--overwrite"], "own input")
    refused(capsys, ["sort", str(folder / "saved_recording"), "--output", str(folder / "saved_recording"),
                     "--overwrite"], "own input")
    assert tree_snapshot(folder) == before


def test_existing_folder_without_overwrite_is_refused(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "sub")], "already exists")
    refused(capsys, ["demo", "--output", str(folder / "sub"), "--overwrite"], "--overwrite refused")
    assert tree_snapshot(folder) == before


def test_overwrite_and_resume_together_are_refused(workspace, capsys):
    folder, before = workspace
    with pytest.raises(SystemExit) as exit_:
        main(["sort", *raw_args(folder), "--output", str(folder / "out"), "--overwrite", "--resume"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "out"), "--force"], "--force only applies")
    assert tree_snapshot(folder) == before


# --- the command line: raw binary files and probes -------------------------------------------

@pytest.mark.parametrize("dtype, fragment", [("in16", "did you mean int16"), ("complex64", "not a sample type"),
                                              ("float", "not float64")])
def test_bad_dtype_names_the_fix(workspace, capsys, dtype, fragment):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder, dtype=dtype), "--output", str(folder / "out")], fragment)
    assert tree_snapshot(folder) == before and not (folder / "out").exists()


def test_float32_file_read_as_int16_is_refused_with_the_dtype_it_fits(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder, name="rec_float32.bin"), "--output", str(folder / "out")],
            "looks like float32", "--dtype float32")
    refused(capsys, ["sort", *raw_args(folder, dtype="float32"), "--output", str(folder / "out")],
            "not float32 samples", "--dtype")
    assert tree_snapshot(folder) == before


def test_size_that_is_not_whole_frames_names_the_three_numbers(workspace, capsys):
    folder, before = workspace
    size = (folder / "rec.bin").stat().st_size
    refused(capsys, ["sort", *raw_args(folder, channels="3"), "--output", str(folder / "out")],
            f"{size} bytes", "3 channels", "2 bytes (int16)")
    assert tree_snapshot(folder) == before


def test_channel_count_that_does_not_fit_the_probe(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder, channels="2"), "--output", str(folder / "out")],
            "4 contacts", "2 channels", "--num-channels")
    assert tree_snapshot(folder) == before


def test_missing_or_unreadable_probe_file(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder, probe="nope.json"), "--output", str(folder / "out")],
            "does not exist", "--probe")
    refused(capsys, ["sort", *raw_args(folder, probe="notes.txt"), "--output", str(folder / "out")],
            "could not be read", "write_probeinterface")
    assert tree_snapshot(folder) == before


def test_raw_file_without_probe_is_told_about_probe(workspace, capsys):
    folder, before = workspace
    argv = ["sort", str(folder / "rec.bin"), "--sampling-frequency", str(FS), "--num-channels", "4",
            "--dtype", "int16", "--output", str(folder / "out")]
    err = refused(capsys, argv, "--probe")
    assert "set_probe" not in err  # a shell user gets the shell option, not Python
    assert tree_snapshot(folder) == before


def test_raw_options_on_a_recording_that_carries_them(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", str(folder / "saved_recording"), "--dtype", "int16", "--output", str(folder / "out")],
            "Drop --dtype")
    assert tree_snapshot(folder) == before


def test_parameter_typo_gets_did_you_mean(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "out"), "--param", "detect_treshold=6"],
            "did you mean 'detect_threshold'")
    assert tree_snapshot(folder) == before


# --- the command line: resume ----------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(user_files, tmp_path_factory):
    """A finished sort of the user's raw file, through the CLI."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["-q", "sort", *raw_args(user_files), "--output", str(out), *FAST]) == 0
    return out


def test_resume_refuses_a_changed_param_or_recording_then_force_returns_the_finished_run(
        finished_run, user_files, capsys):
    before = tree_snapshot(finished_run)
    refused(capsys, ["sort", *raw_args(user_files), "--output", str(finished_run), "--resume",
                     "--param", "detect_threshold=6"], "detect_threshold is 4.5 there, 6.0 here", "--force")
    refused(capsys, ["sort", *raw_args(user_files, name="rec_float32.bin", dtype="float32"), "--output",
                     str(finished_run), "--resume"], "files differ")
    assert main(["-q", "sort", *raw_args(user_files), "--output", str(finished_run), "--resume",
                 "--param", "detect_threshold=6", "--force"]) == 0
    assert main(["-q", "sort", *raw_args(user_files), "--output", str(finished_run), "--resume"]) == 0
    assert "units" in capsys.readouterr().out
    assert tree_snapshot(finished_run) == before  # a finished run is returned, not run again


def test_resume_of_a_folder_without_a_run(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "sub"), "--resume"],
            "holds no deepspikesort run")
    assert tree_snapshot(folder) == before


# --- the command line as a process: quiet, Ctrl-C ---------------------------------------------

def cli(*argv):
    return [sys.executable, "-m", "spikeinterface_deepsort.cli", *argv]


def test_quiet_sort_prints_the_result_only(user_files, tmp_path):
    done = subprocess.run(cli("-q", "sort", *raw_args(user_files), "--output", str(tmp_path / "out"), *FAST),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no stage lines, progress bars or warnings
    assert len(done.stdout.strip().splitlines()) == 1 and "units" in done.stdout


# At a stage boundary, and in the middle of DeepCluster's training (long enough to be there for sure).
@pytest.mark.parametrize("wait_for, steps", [("stage preprocessing: done", 30), ("stage deepcluster: started", 1500)])
def test_ctrl_c_says_how_to_resume(user_files, tmp_path, wait_for, steps):
    out = tmp_path / "out"
    options = ["--param", f"steps_per_round={steps}", "--param", "max_training_peaks=2000"]
    process = subprocess.Popen(cli("sort", *raw_args(user_files), "--output", str(out), *options),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "sorter_output" / "deepspikesort.log"
    deadline = time.monotonic() + 300
    while not (log.exists() and wait_for in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)  # at once: a Ctrl-C raised inside numba's compiler could hang it
    assert process.returncode == 130, err
    assert "interrupted" in err and f"--output {out} --resume" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    # The stage it was in is started again: nothing half-written is read back.
    resumed = subprocess.run(cli("sort", *raw_args(user_files), "--output", str(out), "--resume"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "sorter_output" / "sorting").is_dir()


# --- run_sorter --------------------------------------------------------------------------------

def saved_recording(folder):
    return sic.load(folder / "saved_recording")


def test_run_sorter_refuses_to_remove_a_users_folder(workspace):
    folder, before = workspace
    with pytest.raises(OutputFolderError, match="remove_existing_folder=True refused"):
        ss.run_sorter("deepspikesort", saved_recording(folder), folder=folder / "sub", remove_existing_folder=True)
    with pytest.raises(OutputFolderError, match="own input"):
        ss.run_sorter("deepspikesort", saved_recording(folder), folder=folder / "saved_recording",
                      remove_existing_folder=True)
    assert tree_snapshot(folder) == before


def test_run_sorter_parameter_typo_gets_did_you_mean(workspace):
    folder, before = workspace
    with pytest.raises(ParameterError, match="did you mean 'detect_threshold'"):
        ss.run_sorter("deepspikesort", saved_recording(folder), folder=folder / "out", detect_treshold=6)
    assert tree_snapshot(folder) == before


def test_no_probe_advice_is_working_python(workspace):
    folder, before = workspace
    recording = sic.read_binary(folder / "rec.bin", sampling_frequency=FS, dtype="int16", num_channels=4)
    with pytest.raises(RecordingError) as error:
        ss.run_sorter("deepspikesort", recording, folder=folder / "out")
    assert PROBE_ADVICE in str(error.value)
    # The advice, run as written (with generate_tetrode for the probe), attaches a probe that is accepted.
    statements = PROBE_ADVICE.replace("probeinterface.read_probeinterface('probe.json').probes[0] (or ", "") \
                             .replace(" for a tetrode)", "").split("; ")
    namespace = {"probeinterface": pi, "recording": recording}
    for statement in statements:
        exec(statement, namespace)
    check_recording(namespace["recording"])
    assert tree_snapshot(folder) == before and not (folder / "out").exists()


def test_in_memory_recording_is_told_to_save_first(workspace):
    folder, before = workspace
    recording, _ = sic.generate_ground_truth_recording(durations=[2.0], num_channels=4, seed=0)
    with pytest.raises(RecordingError, match=r"recording.save\(folder="):
        ss.run_sorter("deepspikesort", recording, folder=folder / "out")
    assert tree_snapshot(folder) == before


def test_resume_keeps_the_runs_own_parameters(finished_run):
    from spikeinterface_deepsort.sorter import resume_sorting

    with pytest.raises(OutputFolderError, match="force=True"):
        resume_sorting(finished_run, params={"min_cluster_size": 12})
    saved = json.loads((finished_run / "spikeinterface_params.json").read_text())["sorter_params"]
    assert saved["min_cluster_size"] == 30


# --- the classes of these mistakes, beyond the examples above ------------------------------------

def test_a_mistyped_recording_path_suggests_the_file_there(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder, name="rec.bni"), "--output", str(folder / "out")],
            "does not exist", f"Did you mean {folder / 'rec.bin'}?")
    assert tree_snapshot(folder) == before


def test_a_damaged_recording_is_named_not_a_traceback(workspace, capsys):
    folder, before = workspace
    damaged = folder / "damaged"
    shutil.copytree(folder / "saved_recording", damaged)
    (damaged / "binary.json").write_text("{ not json")
    before = tree_snapshot(folder)
    refused(capsys, ["sort", str(damaged), "--output", str(folder / "out")], "SpikeInterface could not open", str(damaged))
    assert tree_snapshot(folder) == before


def test_a_mistyped_choice_gets_did_you_mean(workspace, capsys):
    folder, before = workspace
    refused(capsys, ["sort", *raw_args(folder), "--output", str(folder / "out"), "--param",
                     "matching_method=circus_omp"], "Did you mean 'circus-omp'?")
    assert tree_snapshot(folder) == before
