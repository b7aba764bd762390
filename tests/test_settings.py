"""The run's seed, device and job_kwargs, resolved once."""

import pytest
import spikeinterface.core as sic
import torch

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.settings import (MEMORY_CACHE_LIMIT_BYTES, cache_mode, float32_bytes, resolve_device,
                                             resolve_job_kwargs, resolve_seed, resolve_settings)


def test_seed_given_saved_or_drawn():
    assert resolve_seed(7) == 7 and resolve_seed(7, saved=3) == 7
    assert resolve_seed(None, saved=3) == 3  # an interrupted run goes on with its own
    drawn = {resolve_seed(None) for _ in range(5)}
    assert len(drawn) > 1 and all(0 <= seed < 2**31 for seed in drawn)


def test_device_names_are_checked_before_any_work():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(ParameterError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ParameterError, match="device must be one of"):
        resolve_device(3)


def test_readers_run_in_threads_unless_the_user_chose_an_engine():
    matching, readers = resolve_job_kwargs({"n_jobs": 2}, progress=False)
    assert matching["n_jobs"] == readers["n_jobs"] == 2 and readers["pool_engine"] == "thread"
    assert matching["progress_bar"] is False
    matching, readers = resolve_job_kwargs({"n_jobs": 2, "pool_engine": "process"}, progress=True)
    assert readers == matching and matching["pool_engine"] == "process"


def test_settings_carry_one_seed_and_one_device():
    params = SORTER_PARAMS.validate({"seed": None, "device": "cpu", "torch_threads": 1, "job_kwargs": {"n_jobs": 1}})
    settings = resolve_settings(params, seed=11, progress=False)
    assert settings.seed == 11 and settings.device == torch.device("cpu") and settings.torch_threads == 1
    assert settings.user_job_kwargs == {"n_jobs": 1} and settings.resume is False


def test_without_n_jobs_the_run_uses_every_core_unless_spikeinterface_was_told_otherwise():
    import spikeinterface.core as sic

    from spikeinterface_deepsort.settings import available_cores

    matching, readers = resolve_job_kwargs({}, progress=False)
    assert matching["n_jobs"] == readers["n_jobs"] == available_cores()
    sic.set_global_job_kwargs(n_jobs=1)
    try:
        assert resolve_job_kwargs({}, progress=False)[0]["n_jobs"] == 1  # the user's global choice is followed
        assert resolve_job_kwargs({"n_jobs": 2}, progress=False)[0]["n_jobs"] == 2
    finally:
        sic.reset_global_job_kwargs()
        import spikeinterface.core.globals as si_globals
        si_globals.global_job_kwargs_set = False  # reset_global_job_kwargs leaves the flag set in 0.105


def test_auto_cache_is_memory_for_short_recordings_and_folder_beyond_the_limit():
    recording = sic.generate_recording(num_channels=16, durations=[6.0], sampling_frequency=30000.0)
    assert float32_bytes(recording) == 16 * 6 * 30000 * 4 <= MEMORY_CACHE_LIMIT_BYTES
    assert cache_mode(recording, "auto") == "memory"
    long_recording = sic.generate_recording(num_channels=384, durations=[400.0], sampling_frequency=30000.0)
    assert float32_bytes(long_recording) > MEMORY_CACHE_LIMIT_BYTES
    assert cache_mode(long_recording, "auto") == "folder"
    assert cache_mode(recording, "off") == "off" and cache_mode(long_recording, "memory") == "memory"
