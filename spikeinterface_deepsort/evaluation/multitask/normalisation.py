"""Waveform normalisation, fitted on training rows only.

Two stages. First each waveform is scaled on its own (``none``, ``zscore``,
``peak-absolute``: divided by its largest absolute value, so that the sign of the peak
is kept; ``min-max``: mapped to [0, 1]). Then, optionally, every time sample is
standardised with the mean and standard deviation of the *training* rows of the fold,
so no statistic of a validation or test row reaches the model.
"""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError

NORMALISATIONS = ("none", "zscore", "peak-absolute", "min-max")
_EPS = 1e-8  # flat waveforms (all samples equal) map to zeros instead of NaN


def scale_waveforms(waveforms: np.ndarray, method: str) -> np.ndarray:
    """Scale each row of ``waveforms`` by its own statistics."""
    x = np.asarray(waveforms, dtype=np.float32)
    if method == "none":
        return x.copy()
    if method == "zscore":
        return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + _EPS)
    if method == "peak-absolute":
        return x / (np.abs(x).max(axis=1, keepdims=True) + _EPS)
    if method == "min-max":
        low, high = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
        return (x - low) / (high - low + _EPS)
    raise ParameterError(f"Unknown normalisation {method!r}: use one of {', '.join(NORMALISATIONS)}.")


class Normaliser:
    """Per-waveform scaling followed by per-sample standardisation learned by :meth:`fit`."""

    def __init__(self, method: str = "zscore", standardise: bool = True):
        if method not in NORMALISATIONS:
            raise ParameterError(f"Unknown normalisation {method!r}: use one of {', '.join(NORMALISATIONS)}.")
        self.method = method
        self.standardise = standardise
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, train_waveforms: np.ndarray) -> "Normaliser":
        scaled = scale_waveforms(train_waveforms, self.method)
        self.mean = scaled.mean(axis=0)
        self.std = scaled.std(axis=0) + _EPS
        return self

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        scaled = scale_waveforms(waveforms, self.method)
        if not self.standardise:
            return scaled
        if self.mean is None:
            raise RuntimeError("Normaliser.transform called before fit (fit it on the training rows of the fold).")
        return ((scaled - self.mean) / self.std).astype(np.float32)
