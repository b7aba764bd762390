"""Stage 1: the preprocessing chain and its cache."""

import gc

import numpy as np
import pytest
import spikeinterface.core as sic
from spikeinterface.core import get_noise_levels
from spikeinterface.core.job_tools import fix_job_kwargs

from spikeinterface_deepsort.params import SORTER_PARAMS
import spikeinterface.preprocessing as spre

from spikeinterface_deepsort.stages.preprocessing import (CACHE_CHUNK_BYTES, MedianReferenceRecording, _cache_job_kwargs,
                                                   is_complete_cache, median_by_sort, objects_frozen_for_gc,
                                                   preprocess, preprocess_and_cache)

JOBS = dict(n_jobs=1, chunk_duration="1s", progress_bar=False)


@pytest.fixture(scope="module")
def recording():
    recording, _ = sic.generate_ground_truth_recording(durations=[6.0], sampling_frequency=30000.0, num_channels=16,
                                                       num_units=6, seed=5)
    return recording


@pytest.mark.parametrize("motion", ["off", "on"])
@pytest.mark.parametrize("mode", ["memory", "folder"])
def test_cached_preprocessing_has_the_traces_of_the_lazy_chain(recording, tmp_path, mode, motion):
    options = SORTER_PARAMS.group(SORTER_PARAMS.validate({"cache_preprocessing": mode, "motion_correction": motion}),
                                  "preprocessing")
    lazy = preprocess(recording, **{k: v for k, v in options.items() if k != "cache_preprocessing"}, seed=1,
                      motion_folder=tmp_path / "lazy_motion", job_kwargs=JOBS)
    cached, cache_folder = preprocess_and_cache(recording, **options, folder=tmp_path, seed=1, resume=False,
                                                job_kwargs=JOBS, user_job_kwargs={})
    # The cache holds the filtered traces, motion is estimated from it and the cache is rewritten in
    # place interpolated and whitened (on disk without motion: written whitened in one pass); either way
    # the traces are the lazy chain's, up to float32 rounding where the filter's chunk edges differ.
    expected = lazy.get_traces(start_frame=30_000, end_frame=90_000)
    traces = cached.get_traces(start_frame=30_000, end_frame=90_000)
    assert np.abs(traces - expected).max() < 1e-4 * np.abs(expected).max()
    assert np.allclose(np.std(traces, axis=0), np.std(expected, axis=0), rtol=1e-3)
    assert (cache_folder is not None) == (mode == "folder")
    assert (tmp_path / "motion").exists() == (motion == "on")
    # The noise levels the later stages read are those of the traces now in the cache.
    assert np.array_equal(get_noise_levels(cached, return_in_uV=False, seed=0),
                          get_noise_levels(cached, return_in_uV=False, seed=0, force_recompute=True))
    if mode == "folder":
        assert (cache_folder / "binary.json").exists() and is_complete_cache(cache_folder)


def test_a_cache_on_disk_is_read_back_when_resuming_only_if_it_was_completed(recording, tmp_path):
    options = SORTER_PARAMS.group(SORTER_PARAMS.validate({"cache_preprocessing": "folder", "motion_correction": "on"}),
                                  "preprocessing")
    run = dict(**options, folder=tmp_path, seed=1, job_kwargs=JOBS, user_job_kwargs={})
    first, cache = preprocess_and_cache(recording, **run, resume=False)
    expected = np.array(first.get_traces(end_frame=30_000))  # a copy: the binary cache's traces are a view of its file
    # A crash during the in-place rewrite leaves the file half filtered, half whitened: not complete.
    (cache / "deepspikesort_complete.json").unlink()
    np.memmap(cache / "traces_cached_seg0.raw", dtype=np.float32, mode="r+")[:1000] = 0.0
    redone, _ = preprocess_and_cache(recording, **run, resume=True)
    assert np.array_equal(redone.get_traces(end_frame=30_000), expected)
    # A complete cache is read back as it is (here marked as such after a change the run must not redo).
    np.memmap(cache / "traces_cached_seg0.raw", dtype=np.float32, mode="r+")[:1000] = 0.0
    kept, _ = preprocess_and_cache(recording, **run, resume=True)
    assert np.all(kept.get_traces(end_frame=1000 // recording.get_num_channels()) == 0.0)


def test_objects_older_than_the_block_are_left_out_of_garbage_collection_only_inside_it():
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), objects_frozen_for_gc():
        assert gc.get_freeze_count() > 0  # the objects made so far: gc.collect() no longer walks them
        fresh = [[]]
        fresh[0].append(fresh)  # a cycle made inside the block is still collected there
        del fresh
        assert gc.collect() >= 2
        raise RuntimeError("a failed cache pass")
    assert gc.get_freeze_count() == 0


def test_cache_chunks_are_longer_on_few_channels_and_the_users_setting_wins():
    job_kwargs = fix_job_kwargs(dict(n_jobs=2))  # 1 s chunks by default
    narrow = sic.generate_recording(num_channels=32, durations=[10.0], sampling_frequency=30000.0)
    wide = sic.generate_recording(num_channels=384, durations=[10.0], sampling_frequency=30000.0)
    assert _cache_job_kwargs(narrow, job_kwargs, {})["chunk_size"] == CACHE_CHUNK_BYTES // (4 * 32)
    assert _cache_job_kwargs(wide, job_kwargs, {})["chunk_size"] == 30000
    assert "chunk_duration" not in _cache_job_kwargs(narrow, job_kwargs, {})
    chosen = fix_job_kwargs(dict(n_jobs=2, chunk_duration="0.5s"))
    assert _cache_job_kwargs(narrow, chosen, {"chunk_duration": "0.5s"}) == chosen


@pytest.mark.parametrize("n_channels", [1, 2, 7, 32, 385])
def test_median_by_sort_is_numpys_median(n_channels):
    traces = np.random.default_rng(n_channels).normal(size=(500, n_channels)).astype(np.float32)
    traces[:, 0] = 0.5  # ties
    for keepdims in (False, True):
        expected = np.median(traces, axis=1, keepdims=keepdims)
        assert np.array_equal(median_by_sort(traces, axis=1, keepdims=keepdims), expected)
    assert np.array_equal(median_by_sort(traces, axis=0), np.median(traces, axis=0))


def test_median_reference_gives_spikeinterfaces_traces_and_reloads(tmp_path):
    # A noise recording: unlike the generated ground truth, it can be written to a file and reloaded.
    recording = sic.generate_recording(num_channels=16, durations=[2.0], sampling_frequency=30000.0, seed=3)
    filtered = spre.bandpass_filter(recording, dtype="float32")
    spikeinterfaces = spre.common_reference(filtered, reference="global", operator="median")
    expected = spikeinterfaces.get_traces(end_frame=30_000)
    referenced = MedianReferenceRecording(filtered)
    assert np.array_equal(referenced.get_traces(end_frame=30_000), expected)
    # Worker processes and saved sorter folders rebuild it from its dict: the fast median must survive.
    referenced.dump_to_json(tmp_path / "rec.json")
    reloaded = sic.load(tmp_path / "rec.json")
    assert isinstance(reloaded, MedianReferenceRecording)
    assert reloaded._recording_segments[0].operator_func is median_by_sort
    assert np.array_equal(reloaded.get_traces(end_frame=30_000), expected)
    job_kwargs = dict(n_jobs=2, chunk_duration="0.5s", progress_bar=False)  # in worker processes
    saved = referenced.save(folder=tmp_path / "saved", **job_kwargs)
    saved_expected = spikeinterfaces.save(folder=tmp_path / "saved_expected", **job_kwargs)
    assert np.array_equal(saved.get_traces(), saved_expected.get_traces())


def test_motion_correction_gives_the_same_motion_on_every_run(tmp_path):
    # SpikeInterface's correct_motion draws its noise chunks unseeded unless the recording carries noise
    # levels: run to run, the motion (and the Sorting after it) then differed by a little.
    from probeinterface import generate_multi_columns_probe
    from spikeinterface.generation import generate_drifting_recording
    from spikeinterface.preprocessing.motion import load_motion_info

    probe = generate_multi_columns_probe(num_columns=2, num_contact_per_column=16, xpitch=20, ypitch=20)
    probe.set_device_channel_indices(np.arange(32))
    zigzag = dict(drift_mode="zigzag", non_rigid_gradient=None, t_start_drift=2.0, t_end_drift=None, period_s=10.0)
    _, drifting, _ = generate_drifting_recording(
        num_units=8, duration=20.0, probe=probe, seed=3,
        generate_displacement_vector_kwargs=dict(displacement_sampling_frequency=5.0, drift_start_um=[0, 20],
                                                 drift_stop_um=[0, -20], drift_step_um=1, motion_list=[zigzag]))
    options = SORTER_PARAMS.group(SORTER_PARAMS.validate({"motion_correction": "on"}), "preprocessing")
    options = {k: v for k, v in options.items() if k != "cache_preprocessing"}
    motions = []
    for run in ("a", "b"):
        preprocess(drifting, **options, seed=1, motion_folder=tmp_path / run, job_kwargs=JOBS)
        motions.append(load_motion_info(tmp_path / run)["motion"].displacement[0])
    assert np.array_equal(motions[0], motions[1])


@pytest.mark.parametrize("rows, expected", [(2, False), (4, False), (8, True), (16, True)])
def test_auto_motion_correction_needs_a_probe_spanning_100_um(rows, expected):
    # Tetrodes and 3-4 rows have no depth to align on (dev-tetrode-noisy lost 0.36 with it on); 8 rows of
    # 20 µm (140 µm) and more drift across contacts (docs/defaults.md).
    from probeinterface import generate_multi_columns_probe

    from spikeinterface_deepsort.stages.preprocessing import wants_motion_correction

    probe = generate_multi_columns_probe(num_columns=2, num_contact_per_column=rows, xpitch=20, ypitch=20)
    probe.set_device_channel_indices(np.arange(2 * rows))
    recording = sic.NumpyRecording(np.zeros((100, 2 * rows), np.float32), 30000.0)
    recording.set_probe(probe, in_place=True)
    assert wants_motion_correction(recording, "auto") is expected
    assert wants_motion_correction(recording, "on") and not wants_motion_correction(recording, "off")
