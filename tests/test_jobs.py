"""Many recordings: SpikeInterface's run_sorter_jobs with deepspikesort.

``run_sorter`` looks sorters up by name in the process that runs the job, so that process
must have imported ``spikeinterface_deepsort``. joblib's loky workers (its default backend)
are fresh interpreters that do not: ``run_sorter_jobs(engine="joblib")`` then fails with
``KeyError: 'deepspikesort'`` (the xfail test below keeps that visible until the package
registers itself in every interpreter). The package registers a loky backend whose workers import
it at start-up (``registration.JOBLIB_BACKEND``); passed through SpikeInterface's own
``engine_kwargs``, it makes the joblib engine work; forking workers (``backend="multiprocessing"``)
is not used here because a fork taken after threads have run (torch, numba, SpikeInterface's
job pools) can deadlock the children.
"""

import pytest
import spikeinterface.core as sic
from spikeinterface.sorters import read_sorter_folder, run_sorter_jobs

from spikeinterface_deepsort.tools.datasets import make_serializable
from spikeinterface_deepsort.registration import JOBLIB_BACKEND

FAST = dict(max_rounds=2, steps_per_round=20, merge_max_template_diff=0.0, seed=0,
            job_kwargs=dict(n_jobs=1, progress_bar=False))

def _jobs(tmp_path, n=2):
    jobs = []
    for i in range(n):
        recording, gt = sic.generate_ground_truth_recording(durations=[5.0], sampling_frequency=30000.0,
                                                            num_channels=8, num_units=4, seed=20 + i)
        recording, _ = make_serializable(recording, gt, tmp_path / f"gt{i}")
        jobs.append(dict(sorter_name="deepspikesort", recording=recording, folder=tmp_path / f"sorted{i}",
                         verbose=False, **FAST))
    return jobs


def test_run_sorter_jobs_joblib_two_recordings(tmp_path):
    jobs = _jobs(tmp_path)
    sortings = run_sorter_jobs(jobs, engine="joblib", engine_kwargs=dict(n_jobs=2, backend=JOBLIB_BACKEND),
                               return_output=True)
    assert len(sortings) == 2
    for job, sorting in zip(jobs, sortings):
        folder = job["folder"]
        assert (folder / "sorter_output" / "sorting").is_dir()
        again = read_sorter_folder(folder)
        assert len(sorting.unit_ids) > 0
        assert list(again.unit_ids) == list(sorting.unit_ids)
        assert again.to_spike_vector().size == sorting.to_spike_vector().size > 0


@pytest.mark.xfail(raises=KeyError, strict=True,
                   reason="known gap: loky workers (joblib's default) are fresh interpreters that never import "
                          "spikeinterface_deepsort, so run_sorter does not find 'deepspikesort' there; the package's "
                          "loky backend (below), dask worker plugin and slurm engine_kwargs (test_engines.py) do")
def test_run_sorter_jobs_joblib_default_loky_workers(tmp_path):
    run_sorter_jobs(_jobs(tmp_path, n=1), engine="joblib", engine_kwargs=dict(n_jobs=2))
