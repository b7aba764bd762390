"""SpikeInterface's run_sorter_jobs engines (dask, slurm), sorter folders read in a process that
never imported this package, and `deepspikesort export` of the folders those engines wrote.

Sorter names live in the process that imported the sorter's package (SpikeInterface 0.105 has
no plugin discovery), so each engine's workers are registered by the engine's own mechanism:
a dask WorkerPlugin, and for SLURM a sitecustomize named by sbatch's --export.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.preprocessing as spre
from spikeinterface.sorters import read_sorter_folder, run_sorter_jobs

from spikeinterface_deepsort.cli.main import main as cli_main
from spikeinterface_deepsort.registration import dask_worker_plugin, slurm_engine_kwargs

FAST = dict(max_rounds=2, steps_per_round=20, merge_max_template_diff=0.0, seed=0, torch_threads=1,
            job_kwargs=dict(n_jobs=1, progress_bar=False))
GAIN_UV = 0.25  # µV per bit of the int16 recordings


def int16_recording(folder: Path, seed: int):
    """A 5 s, 8-channel generated recording saved as int16 (0.25 µV per bit) in a binary folder."""
    recording, _ = sic.generate_ground_truth_recording(durations=[5.0], sampling_frequency=30000.0, num_channels=8,
                                                       num_units=4, seed=seed)
    counts = spre.scale(recording, gain=1 / GAIN_UV, dtype="int16")
    counts.set_channel_gains(GAIN_UV)
    counts.set_channel_offsets(0.0)
    return counts.save(folder=folder, progress_bar=False)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    base = tmp_path_factory.mktemp("engines")
    return base, [int16_recording(base / f"recording{i}", seed=30 + i) for i in range(2)]


@pytest.fixture(scope="module")
def dask_sorted(recordings):
    """Two sorts through run_sorter_jobs(engine="dask") on a LocalCluster of 2 worker processes."""
    distributed = pytest.importorskip("distributed", reason="the dask engine needs dask.distributed "
                                      "(pip install 'spikeinterface-deepsort[test]')")
    base, recs = recordings
    jobs = [dict(sorter_name="deepspikesort", recording=rec, folder=base / f"dask{i}", verbose=False, **FAST)
            for i, rec in enumerate(recs)]
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        before = client.run(lambda: "spikeinterface_deepsort" in sys.modules)
        client.register_plugin(dask_worker_plugin())
        after = client.run(lambda: "spikeinterface_deepsort" in sys.modules)
        run_sorter_jobs(jobs, engine="dask", engine_kwargs=dict(client=client))
    return [job["folder"] for job in jobs], before, after


def test_dask_engine_sorts_two_recordings(dask_sorted, recordings):
    folders, before, after = dask_sorted
    assert len(before) == 2 and not any(before.values())  # fresh worker interpreters: no sorter there
    assert all(after.values())  # the plugin imported the package in both workers
    _, recs = recordings
    for folder, rec in zip(folders, recs):
        sorting = read_sorter_folder(folder)
        assert len(sorting.unit_ids) > 0
        spikes = sorting.to_spike_vector()
        assert spikes.size > 0 and spikes["sample_index"].max() < rec.get_num_samples()
        assert json.loads((folder / "spikeinterface_log.json").read_text())["error"] is False


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import spikeinterface as si
    from spikeinterface.sorters import read_sorter_folder
    folder = sys.argv[1]
    sorting = si.load(folder)
    inner = si.load(folder + "/sorter_output/sorting")
    out = dict(units=[str(u) for u in sorting.unit_ids], spikes=int(sorting.to_spike_vector().size),
               same=bool((sorting.to_spike_vector() == inner.to_spike_vector()).all()))
    try:
        read_sorter_folder(folder)
        out["read_sorter_folder"] = "loaded"
    except KeyError as error:
        out["read_sorter_folder"] = f"KeyError: {error}"
    out["imported"] = "spikeinterface_deepsort" in sys.modules
    print(json.dumps(out))
""")


def test_sorter_folder_in_a_process_that_never_imported_the_package(dask_sorted):
    """si.load of the sorter folder gives its Sorting in a process that never imported the package;
    read_sorter_folder still needs the import (SpikeInterface looks the sorter's class up by name)."""
    folder = dask_sorted[0][0]
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder)], capture_output=True, text=True,
                            timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["imported"] is False
    sorting = read_sorter_folder(folder)
    assert out["units"] == [str(u) for u in sorting.unit_ids]
    assert out["spikes"] == sorting.to_spike_vector().size and out["same"]
    assert out["read_sorter_folder"] == "KeyError: 'deepspikesort'"


FAKE_SBATCH = textwrap.dedent("""\
    #!{python}
    # Stands in for SLURM's sbatch on a machine without SLURM: applies --export as sbatch does
    # (ALL: the caller's environment; NAME=value entries) and runs the job script at once.
    import os, subprocess, sys
    args, env, export = sys.argv[1:], {{}}, "ALL"
    while len(args) > 1:
        name, value, args = args[0], args[1], args[2:]
        if name == "--export":
            export = value
    script = args[0]
    entries = export.split(",")
    env = dict(os.environ) if "ALL" in entries else {{}}
    env.update(entry.split("=", 1) for entry in entries if "=" in entry)
    done = subprocess.run([script], env=env)
    print("Submitted batch job 1" if done.returncode == 0 else f"job failed: {{done.returncode}}")
    sys.exit(done.returncode)
""")


def test_slurm_engine_jobs_register_the_sorter(recordings, dask_sorted, tmp_path, monkeypatch):
    """run_sorter_jobs(engine="slurm") with slurm_engine_kwargs: SpikeInterface's own job script, run in a
    fresh interpreter by a stand-in sbatch, sorts; the result equals the dask worker's (same seed)."""
    base, recs = recordings
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH.format(python=sys.executable))
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "slurm0"
    engine_kwargs = slurm_engine_kwargs(tmp_path / "slurm_scripts", sbatch_args={"time": "00:10:00"})
    assert engine_kwargs["sbatch_args"]["export"].startswith("ALL,PYTHONPATH=")
    run_sorter_jobs([dict(sorter_name="deepspikesort", recording=recs[0], folder=folder, verbose=False, **FAST)],
                    engine="slurm", engine_kwargs=engine_kwargs)
    sorting = read_sorter_folder(folder)
    reference = read_sorter_folder(dask_sorted[0][0])
    assert list(sorting.unit_ids) == list(reference.unit_ids)
    for unit in sorting.unit_ids:
        np.testing.assert_array_equal(sorting.get_unit_spike_train(unit), reference.get_unit_spike_train(unit))


def test_cli_phy_export_without_binary_points_at_the_sorted_file(dask_sorted, recordings, tmp_path):
    phylib_model = pytest.importorskip("phylib.io.model", reason="phylib is not installed (pip install phylib)")
    folder = dask_sorted[0][0]
    _, recs = recordings
    sorting = read_sorter_folder(folder)
    out = tmp_path / "phy"
    assert cli_main(["-q", "export", str(folder), "--format", "phy", "--output", str(out), "--no-binary"]) == 0
    assert not (out / "recording.dat").exists()
    model = phylib_model.load_model(out / "params.py")
    original = Path(recs[0]._bin_kwargs["file_paths"][0]).resolve()
    assert [Path(p).resolve() for p in model.dat_path] == [original]
    assert model.dtype == np.int16 and model.n_channels_dat == 8
    np.testing.assert_array_equal(np.asarray(model.traces[:1000]), recs[0].get_traces(start_frame=0, end_frame=1000))
    nonempty = [u for u in sorting.unit_ids if len(sorting.get_unit_spike_train(u))]
    assert model.n_spikes == sorting.to_spike_vector().size
    for cluster, unit in enumerate(nonempty):
        np.testing.assert_array_equal(model.spike_samples[model.spike_clusters == cluster],
                                      sorting.get_unit_spike_train(unit))

    # a second export into it is refused, --overwrite replaces it, and the sorter folder is never a target
    assert cli_main(["-q", "export", str(folder), "--format", "phy", "--output", str(out), "--no-binary"]) == 2
    assert cli_main(["-q", "export", str(folder), "--format", "phy", "--output", str(out), "--overwrite"]) == 0
    assert np.fromfile(out / "recording.dat", dtype=np.int16).size == 8 * recs[0].get_num_samples()
    assert cli_main(["-q", "export", str(folder), "--format", "alf", "--output", str(out), "--overwrite"]) == 2
    before = sorted(p.name for p in folder.iterdir())
    assert cli_main(["-q", "export", str(folder), "--format", "alf", "--output", str(folder), "--overwrite"]) == 2
    assert sorted(p.name for p in folder.iterdir()) == before
