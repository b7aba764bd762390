"""End-to-end behaviour of run_deepspikesort: stage outputs, accuracy, edge cases."""

import numpy as np
import pytest
import spikeinterface.core as sic
from spikeinterface.comparison import compare_sorter_to_ground_truth
from threadpoolctl import threadpool_info

from spikeinterface_deepsort import run_deepspikesort
from spikeinterface_deepsort.tools.datasets import ground_truth_recording

STAGE_FILES = ["peaks.npy", "noise_levels.npy", "snippets/snippets.npy", "deepcluster/deepcluster_history.csv",
               "split_labels.npy",
               "peak_labels.npy", "templates.npz", "stages.json",
               "deepspikesort.log", "sorting"]


def _thread_pool_sizes():
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}


def test_32_channel_reference_case_accuracy(tmp_path):
    """The reference case (32 channels, 20 units, 60 s, seed 42); the accuracy asserted is what the sorter reaches (see benchmarks/)."""
    recording, gt = ground_truth_recording()
    pools_before = _thread_pool_sizes()
    sorting = run_deepspikesort(recording, tmp_path, dict(job_kwargs=dict(n_jobs=2, progress_bar=False)), verbose=False)
    # Two worker threads used to leave BLAS or OpenMP limited to one thread for the caller.
    pools_after = _thread_pool_sizes()
    assert {path: pools_after[path] for path in pools_before} == pools_before
    for name in STAGE_FILES:
        assert (tmp_path / name).exists(), name
    perf = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True).get_performance()
    assert perf["accuracy"].mean() >= 0.75
    assert (perf["accuracy"] > 0.8).sum() >= 13


def test_multi_segment_recording_sorts(tmp_path, fast_params):
    recording, gt = sic.generate_ground_truth_recording(durations=[20.0, 15.0], sampling_frequency=30000.0,
                                                        num_channels=4, num_units=4, seed=5)
    sorting = run_deepspikesort(recording, tmp_path, fast_params, verbose=False)
    assert sorting.get_num_segments() == 2
    assert all(len(sorting.get_unit_spike_train(u, segment_index=1)) > 0 for u in sorting.unit_ids)
    perf = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True).get_performance()
    assert perf["accuracy"].mean() >= 0.7


def test_quiet_recording_returns_an_empty_sorting_with_a_warning(tmp_path, fast_params):
    recording = sic.generate_recording(num_channels=4, durations=[2.0], seed=0)  # noise only
    with pytest.warns(UserWarning, match="empty Sorting"):
        sorting = run_deepspikesort(recording, tmp_path, fast_params, verbose=False)
    assert len(sorting.unit_ids) == 0 and sorting.get_num_segments() == 1


def test_without_matching_the_clustered_peaks_are_the_spikes(small_case, tmp_path, fast_params):
    recording, gt = small_case
    sorting = run_deepspikesort(recording, tmp_path, dict(fast_params, matching_method="none"), verbose=False)
    peaks = np.load(tmp_path / "peaks.npy")
    assert 0 < sorting.to_spike_vector().size <= len(peaks)
    assert set(sorting.to_spike_vector()["sample_index"]) <= set(peaks["sample_index"])


def test_spikeinterface_clustering_replaces_the_learned_stages(small_case, tmp_path, fast_params):
    """clustering="iterative-hdbscan": SpikeInterface's clustering of the same peaks, then our curation and
    matching; no snippets, no network."""
    recording, gt = small_case
    sorting = run_deepspikesort(recording, tmp_path, dict(fast_params, clustering="iterative-hdbscan"), verbose=False)
    assert not (tmp_path / "snippets").exists() and not (tmp_path / "deepcluster").exists()
    assert (tmp_path / "peak_labels.npy").exists() and (tmp_path / "templates.npz").exists()
    perf = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True).get_performance()
    assert (perf["accuracy"] > 0.8).sum() >= 4


def test_each_stage_signature_names_the_parameters_it_reads():
    """A stage receives its own group of SORTER_PARAMS as keywords: its signature lists every one of them."""
    import inspect

    from spikeinterface_deepsort.params import SORTER_PARAMS
    from spikeinterface_deepsort.stages.deepcluster import run_deepcluster
    from spikeinterface_deepsort.stages.detection import detect
    from spikeinterface_deepsort.stages.preprocessing import preprocess_and_cache
    from spikeinterface_deepsort.stages.units import label_all_peaks

    stages = {"preprocessing": preprocess_and_cache, "detection": detect, "deepcluster": run_deepcluster,
              "units": label_all_peaks}
    defaults = SORTER_PARAMS.defaults()
    for group, stage in stages.items():
        keywords = {name for name, p in inspect.signature(stage).parameters.items() if p.kind is p.KEYWORD_ONLY}
        assert set(SORTER_PARAMS.group(defaults, group)) <= keywords, (group, keywords)
        assert not keywords & {"params", "settings"}
