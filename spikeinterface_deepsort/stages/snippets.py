"""Snippets: short windows of the recording around each peak, on the channels near it.

Snippets are written by SpikeInterface's node pipeline (chunked, parallel under
``job_kwargs``) straight into ``.npy`` files that are then opened memory-mapped, so
neither the recording nor all snippets are ever held in RAM. Each snippet keeps the
peak's channel first and its neighbours after it, nearest first, so that a CNN sees the
same layout wherever the peak lies on the probe; channels missing at a probe's edge
are zero and flagged in the ``channel_mask``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from spikeinterface.core.node_pipeline import ExtractDenseWaveforms, PeakRetriever, PipelineNode, run_node_pipeline
from spikeinterface.sortingcomponents.peak_localization.center_of_mass import LocalizeCenterOfMass
from torch.utils.data import Dataset


def neighbour_table(channel_locations: np.ndarray, radius_um: float, max_channels: int) -> np.ndarray:
    """For every channel, the indices of the channels within ``radius_um``, itself first.

    Shape (num_channels, K) with K the largest neighbourhood (capped at ``max_channels``);
    shorter neighbourhoods (probe edges) are padded with -1. Ties in distance are broken
    by depth, then by x, so the order is the same for every channel of a regular probe.
    """
    locations = np.asarray(channel_locations, dtype=float)
    distances = np.linalg.norm(locations[:, None, :] - locations[None, :, :], axis=2)
    rows = []
    for channel in range(len(locations)):
        order = np.lexsort((locations[:, 0], locations[:, 1], distances[channel]))
        order = order[distances[channel, order] <= radius_um][:max_channels]
        rows.append(order)
    width = max(len(row) for row in rows)
    table = np.full((len(locations), width), -1, dtype=np.int64)
    for channel, row in enumerate(rows):
        table[channel, : len(row)] = row
    return table


class NeighbourSnippets(PipelineNode):
    """Pipeline node cutting each peak's snippet on its neighbour channels, shape (n, time, K)."""

    def __init__(self, recording, parents, neighbours: np.ndarray, return_output: bool = True):
        PipelineNode.__init__(self, recording, parents=parents, return_output=return_output)
        self.neighbours = neighbours
        self._kwargs.update(dict(neighbours=neighbours))

    def get_dtype(self):
        return np.dtype("float32")

    def compute(self, traces, peaks, waveforms):
        table = self.neighbours[peaks["channel_index"]]  # (n, K)
        valid = table >= 0
        index = np.where(valid, table, 0)
        snippets = np.take_along_axis(waveforms, index[:, None, :], axis=2).astype("float32")
        snippets *= valid[:, None, :]
        return snippets


@dataclass
class SnippetStore:
    """Memory-mapped snippets of a set of peaks, with their positions and layout."""

    folder: Path
    snippets: np.ndarray  # (n_peaks, n_samples, n_channels) float32, memory-mapped
    locations: np.ndarray  # (n_peaks, 2) x, y in µm (centre of mass)
    neighbours: np.ndarray  # (num_channels, n_channels) channel indices, -1 padded
    nbefore: int
    scale: float  # divide snippets by this to give the network O(1) inputs

    @property
    def n_samples(self) -> int:
        return self.snippets.shape[1]

    @property
    def n_channels(self) -> int:
        return self.snippets.shape[2]

    def __len__(self) -> int:
        return self.snippets.shape[0]

    @classmethod
    def load(cls, folder: Path) -> "SnippetStore":
        folder = Path(folder)
        info = json.loads((folder / "snippets.json").read_text())
        locations = np.load(folder / "locations.npy")
        return cls(
            folder=folder,
            snippets=np.load(folder / "snippets.npy", mmap_mode="r"),
            locations=np.stack([locations["x"], locations["y"]], axis=1).astype("float32"),
            neighbours=np.load(folder / "neighbours.npy"),
            nbefore=info["nbefore"],
            scale=info["scale"],
        )

    @staticmethod
    def is_complete(folder: Path) -> bool:
        return (Path(folder) / "snippets.json").exists()


def extract_snippets(
    recording,
    peaks: np.ndarray,
    folder: str | Path,
    ms_before: float = 1.0,
    ms_after: float = 1.5,
    radius_um: float = 60.0,
    max_channels: int = 8,
    job_kwargs: dict | None = None,
) -> SnippetStore:
    """Cut the snippets of ``peaks`` (sorted by segment then sample) into ``folder``.

    ``snippets.json`` is written last: its presence marks a complete extraction, so an
    interrupted one is redone rather than trusted.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "snippets.json").unlink(missing_ok=True)
    fs = recording.get_sampling_frequency()
    nbefore = int(round(ms_before * fs / 1000.0))
    nafter = int(round(ms_after * fs / 1000.0))
    neighbours = neighbour_table(recording.get_channel_locations(), radius_um, max_channels)
    np.save(folder / "neighbours.npy", neighbours)

    retriever = PeakRetriever(recording, peaks)
    dense = ExtractDenseWaveforms(recording, nbefore=nbefore, nafter=nafter, parents=[retriever], return_output=False)
    locate = LocalizeCenterOfMass(recording, parents=[retriever, dense], radius_um=max(radius_um, 50.0))
    cut = NeighbourSnippets(recording, parents=[retriever, dense], neighbours=neighbours)
    job_kwargs = dict(job_kwargs or {})
    run_node_pipeline(
        recording,
        [retriever, dense, locate, cut],
        job_kwargs=job_kwargs,
        job_name="extract snippets",
        gather_mode="npy",
        gather_kwargs=dict(exist_ok=True),
        dest=folder,
        names=["locations", "snippets"],
    )
    snippets = np.load(folder / "snippets.npy", mmap_mode="r")
    scale = _robust_scale(snippets, nbefore)
    (folder / "snippets.json").write_text(
        json.dumps({"nbefore": nbefore, "nafter": nafter, "n_peaks": int(len(peaks)), "scale": scale})
    )
    return SnippetStore.load(folder)


def _robust_scale(snippets: np.ndarray, nbefore: int, n_max: int = 5000) -> float:
    """Median absolute peak amplitude on the main channel, from an evenly spaced subset."""
    if len(snippets) == 0:
        return 1.0
    index = np.linspace(0, len(snippets) - 1, min(n_max, len(snippets))).astype(int)
    amplitude = np.abs(np.asarray(snippets[index, nbefore, 0]))
    scale = float(np.median(amplitude))
    return scale if scale > 0 else 1.0


class SnippetDataset(Dataset):
    """Torch view of a :class:`SnippetStore` (or any (n, time, channels) array) with optional labels.

    Items are (channels, time) float32 tensors scaled to O(1). ``indices`` selects a
    subset without copying the memory map. With ``augment`` a training item gets
    Gaussian noise, a time shift of up to two samples and an amplitude scaling, so that
    the network learns features that survive the variability of real spikes.
    """

    def __init__(self, snippets: np.ndarray, scale: float = 1.0, indices: np.ndarray | None = None,
                 labels: np.ndarray | None = None, augment: bool = False, seed: int = 0):
        self.snippets = snippets
        self.scale = float(scale)
        self.indices = np.arange(len(snippets)) if indices is None else np.asarray(indices)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(self.indices):
            raise ValueError("labels must have one entry per selected snippet")
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def _augment(self, x: np.ndarray, items: list[int]) -> np.ndarray:
        """Augment a (batch, time, channels) block, vectorised: per-item work in Python cost
        more than the network's own training step on a CPU."""
        # Seeded by (seed, epoch, items): identical across runs and across data-loader workers.
        rng = np.random.default_rng((self.seed, self.epoch, *items))
        n, n_time = x.shape[0], x.shape[1]
        shifts = rng.integers(-2, 3, size=n)
        source = (np.arange(n_time)[None, :] - shifts[:, None]) % n_time  # np.roll of each item by its shift
        x = np.take_along_axis(x, source[:, :, None], axis=1)
        scales = rng.uniform(0.85, 1.15, size=(n, 1, 1)).astype(np.float32)
        return x * scales + rng.normal(0.0, 0.1, size=x.shape).astype(np.float32)

    def __getitems__(self, items: list[int]) -> list:
        """A whole batch in one read of the memory map (the DataLoader calls this when batching)."""
        items = [int(i) for i in items]
        x = np.asarray(self.snippets[self.indices[items]], dtype=np.float32) / self.scale
        if self.augment:
            x = self._augment(x, items)
        batch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)).unbind(0)
        if self.labels is None:
            return [(tensor,) for tensor in batch]
        return list(zip(batch, self.labels[items].tolist()))

    def __getitem__(self, item: int):
        return self.__getitems__([item])[0]
