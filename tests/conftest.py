import shutil
from pathlib import Path

import pytest
import spikeinterface.core as sic

import spikeinterface_deepsort  # noqa: F401  (registers the sorter)
from spikeinterface_deepsort.tools.datasets import make_serializable


@pytest.fixture(scope="session")
def tetrode_case(tmp_path_factory):
    """SpikeInterface's own sorter-test recording: 4 channels, 60 s, with its ground truth (serialisable)."""
    recording, sorting = sic.generate_ground_truth_recording(durations=[60.0], sampling_frequency=30000.0,
                                                             num_channels=4, num_units=5, seed=2205)
    return make_serializable(recording, sorting, tmp_path_factory.mktemp("tetrode") / "ground_truth")


@pytest.fixture(scope="session")
def small_case():
    """A short 16-channel recording for stage tests."""
    return sic.generate_ground_truth_recording(durations=[10.0], sampling_frequency=30000.0, num_channels=16,
                                               num_units=6, seed=11)


@pytest.fixture
def fast_params():
    """Sorter settings that keep a test run short (fewer DeepCluster rounds and steps)."""
    return dict(max_rounds=3, steps_per_round=40, seed=3, job_kwargs=dict(n_jobs=1, progress_bar=False))


@pytest.fixture(scope="session")
def sorter_folder(tmp_path_factory) -> Path:
    """One real sort per test session (shared by the report's and the hand-off's tests): 8 channels, 5 units, 12 s, fast DeepCluster settings, report written at the end."""
    import spikeinterface.sorters as ss

    from spikeinterface_deepsort.tools.datasets import ground_truth_recording

    base = tmp_path_factory.getbasetemp() / "shared_deepspikesort_sort"
    folder = base / "sort"
    if (folder / "sorter_output" / "sorting").exists() and (folder / "report" / "index.html").exists():
        return folder
    shutil.rmtree(base, ignore_errors=True)
    recording, _ = ground_truth_recording(8, 5, 12.0, seed=7, folder=base / "gt")
    ss.run_sorter("deepspikesort", recording, folder=folder, verbose=False, max_rounds=2, steps_per_round=20,
                  merge_max_template_diff=0.0, make_report=True, seed=1,
                  job_kwargs=dict(n_jobs=1, progress_bar=False))
    return folder


@pytest.fixture(scope="session")
def report_folder(sorter_folder) -> Path:
    """The report written by the session's sort itself (sorter parameter make_report=True)."""
    return sorter_folder / "report"


@pytest.fixture(scope="session")
def export_case():
    """A 3 s, 16-channel generated recording with its 5 ground-truth units under string ids (as many
    sorters give: ALF must map them to 0..n-1), for the exports' tests."""
    recording, sorting = sic.generate_ground_truth_recording(durations=[3.0], sampling_frequency=30000.0,
                                                             num_channels=16, num_units=5, seed=5)
    return recording, sorting.rename_units([f"u{u}" for u in sorting.unit_ids])


@pytest.fixture(scope="session")
def export_analyzer(export_case):
    """The exports' analyzer of ``export_case`` (build_analyzer's defaults). Do not change it in a test."""
    from spikeinterface_deepsort.tools.analyzer import build_analyzer

    recording, sorting = export_case
    return build_analyzer(sorting, recording)
