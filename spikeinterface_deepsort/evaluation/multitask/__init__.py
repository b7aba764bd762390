"""Multi-task benchmarks on single-channel waveform CSV files (the A2, A3, A4, A12 and A21 formats).

Does one network trained on several recordings at once (a shared trunk with one head
per file) classify fibres ("tracks") better than one network per file? This package
answers that without the leaks of the original study: stratified shuffled folds, model
choice on inner validation splits only, normalisation fitted on training rows only,
and every test fold scored once.
"""

from .loader import WaveformDataset, load_csv_dataset, load_datasets
from .synthetic import DATASET_SPECS, write_csv_datasets

__all__ = ["WaveformDataset", "load_csv_dataset", "load_datasets", "DATASET_SPECS", "write_csv_datasets"]
