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
