import numpy as np
import spikeinterface.preprocessing as spre
from spikeinterface.comparison import compare_sorter_to_ground_truth
from spikeinterface.core import NumpySorting
from spikeinterface.sortingcomponents.clustering import find_clusters_from_peaks
from spikeinterface.sortingcomponents.clustering.method_list import clustering_methods

from spikeinterface_deepsort.integrations.clustering import DeepClusterClustering
from spikeinterface_deepsort.stages.detection import detect, estimate_noise_levels
from spikeinterface_deepsort.params import SORTER_PARAMS


def test_registered_with_spikeinterface():
    assert clustering_methods["deepcluster"] is DeepClusterClustering


def test_find_clusters_from_peaks_runs_deepcluster(small_case, tmp_path):
    recording, gt = small_case
    recording = spre.whiten(spre.bandpass_filter(recording, dtype="float32"), mode="local", radius_um=100.0)
    job_kwargs = dict(n_jobs=1, progress_bar=False)
    noise = estimate_noise_levels(recording, seed=0, job_kwargs=job_kwargs)
    peaks = detect(recording, noise, **SORTER_PARAMS.group(SORTER_PARAMS.defaults(), "detection"), prototype_ms_before=1.0,
                   prototype_ms_after=1.5, seed=0, job_kwargs=job_kwargs)
    labels_set, peak_labels = find_clusters_from_peaks(
        recording, peaks, method="deepcluster",
        method_kwargs=dict(max_rounds=2, steps_per_round=30, folder=tmp_path / "dc"), job_kwargs=job_kwargs,
    )
    assert len(peak_labels) == len(peaks) and set(np.unique(peak_labels[peak_labels >= 0])) == set(labels_set)
    assert (tmp_path / "dc" / "deepcluster" / "deepcluster_history.csv").exists()
    keep = peak_labels >= 0
    clustering = NumpySorting.from_samples_and_labels([peaks["sample_index"][keep]], [peak_labels[keep]],
                                                      recording.sampling_frequency)
    perf = compare_sorter_to_ground_truth(gt, clustering, exhaustive_gt=False).get_performance()
    assert (perf["accuracy"] > 0.5).sum() >= len(gt.unit_ids) // 2


def test_curation_ends_the_method_unless_switched_off(small_case, tmp_path):
    """curate=True (the default) runs the sorter's stage 6 on HDBSCAN's units: never more units, the labels
    those of ``curate_units`` on the uncurated ones."""
    from spikeinterface_deepsort.stages.curation import curate_units
    from spikeinterface_deepsort.stages.matching import estimate_templates

    recording, _ = small_case
    recording = spre.whiten(spre.bandpass_filter(recording, dtype="float32"), mode="local", radius_um=100.0)
    job_kwargs = dict(n_jobs=1, progress_bar=False)
    noise = estimate_noise_levels(recording, seed=0, job_kwargs=job_kwargs)
    defaults = SORTER_PARAMS.defaults()
    peaks = detect(recording, noise, **SORTER_PARAMS.group(defaults, "detection"), prototype_ms_before=1.0,
                   prototype_ms_after=1.5, seed=0, job_kwargs=job_kwargs)
    options = dict(max_rounds=1, steps_per_round=30, noise_levels=noise, small_unit_size=0)
    _, raw = find_clusters_from_peaks(recording, peaks, method="deepcluster", method_kwargs=options | dict(curate=False),
                                      job_kwargs=job_kwargs)
    _, curated = find_clusters_from_peaks(recording, peaks, method="deepcluster", method_kwargs=options,
                                          job_kwargs=job_kwargs)
    templates = estimate_templates(recording, peaks, raw, noise, template_ms_before=1.0, template_ms_after=2.0,
                                   template_radius_um=100.0, min_template_snr=2.5, job_kwargs=job_kwargs)
    expected = curate_units(templates, peaks, raw, noise, first_small_label=int(raw.max()) + 1,
                            max_template_diff=defaults["merge_max_template_diff"],
                            total_samples=recording.get_total_samples(), dead_time_ms=defaults["exclude_sweep_ms"])
    np.testing.assert_array_equal(curated, expected)
    assert len(np.unique(curated[curated >= 0])) <= len(np.unique(raw[raw >= 0]))
