import numpy as np
import torch

from spikeinterface_deepsort.stages.detection import detect, estimate_noise_levels
from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.stages.snippets import SnippetDataset, SnippetStore, extract_snippets, neighbour_table


def test_neighbour_table_puts_the_channel_first_and_pads_at_edges():
    locations = np.array([[0, 0], [0, 20], [0, 40], [0, 60]], dtype=float)
    table = neighbour_table(locations, radius_um=25, max_channels=8)
    assert table.shape == (4, 3)
    assert list(table[:, 0]) == [0, 1, 2, 3]
    assert list(table[0]) == [0, 1, -1]  # probe edge: one neighbour only
    assert set(table[1]) == {0, 1, 2}


def test_neighbour_table_caps_the_number_of_channels():
    locations = np.stack(np.meshgrid(np.arange(4) * 20.0, np.arange(4) * 20.0), -1).reshape(-1, 2)
    assert neighbour_table(locations, radius_um=100, max_channels=5).shape == (16, 5)


def test_snippets_are_written_to_disk_and_match_the_traces(small_case, tmp_path):
    recording, _ = small_case
    job_kwargs = dict(n_jobs=1, progress_bar=False)
    noise = estimate_noise_levels(recording, seed=0, job_kwargs=job_kwargs)
    peaks = detect(recording, noise, **SORTER_PARAMS.group(SORTER_PARAMS.defaults(), "detection"), prototype_ms_before=1.0,
                   prototype_ms_after=1.5, seed=0, job_kwargs=job_kwargs)
    store = extract_snippets(recording, peaks, tmp_path / "snippets", 1.0, 1.5, 60.0, 6, job_kwargs)

    assert (tmp_path / "snippets" / "snippets.npy").exists() and SnippetStore.is_complete(tmp_path / "snippets")
    assert isinstance(store.snippets, np.memmap)
    assert store.snippets.shape == (len(peaks), 30 + 45, store.n_channels) and store.n_channels <= 6
    assert store.locations.shape == (len(peaks), 2)
    i = len(peaks) // 2
    peak = peaks[i]
    traces = recording.get_traces(start_frame=peak["sample_index"] - 30, end_frame=peak["sample_index"] + 45)
    channels = store.neighbours[peak["channel_index"]]
    valid = channels >= 0
    np.testing.assert_allclose(store.snippets[i][:, valid], traces[:, channels[valid]], rtol=1e-5, atol=1e-4)
    reloaded = SnippetStore.load(tmp_path / "snippets")
    assert reloaded.scale == store.scale and len(reloaded) == len(store)


def test_dataset_items_are_channels_by_time_and_augmentation_is_seeded():
    snippets = np.random.default_rng(0).normal(size=(10, 40, 3)).astype(np.float32)
    plain = SnippetDataset(snippets, scale=2.0, labels=np.arange(10))
    x, y = plain[4]
    assert x.shape == (3, 40) and y == 4
    torch.testing.assert_close(x, torch.from_numpy(snippets[4].T / 2.0))
    a = SnippetDataset(snippets, augment=True, seed=5)[3][0]
    b = SnippetDataset(snippets, augment=True, seed=5)[3][0]
    c = SnippetDataset(snippets, augment=True, seed=6)[3][0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augmentation_shifts_by_at_most_two_samples_scales_and_adds_small_noise():
    snippets = np.zeros((256, 40, 3), dtype=np.float32)
    snippets[:, 20, :] = -10.0  # one spike at sample 20 on every channel
    dataset = SnippetDataset(snippets, augment=True, seed=0)
    batch = torch.stack([item[0] for item in dataset.__getitems__(list(range(256)))])
    troughs = batch.mean(dim=1).argmin(dim=1)
    assert set(troughs.tolist()) == {18, 19, 20, 21, 22}
    depth = -batch.mean(dim=1).min(dim=1).values
    assert 8.5 - 0.2 < depth.min() and depth.max() < 11.5 + 0.2  # amplitude x 0.85-1.15 (+ noise)
    away_from_spike = batch[:, :, :15]
    assert 0.09 < away_from_spike.std() < 0.11
