"""The synthetic stand-ins: sizes, classes and format of the originals, seeded, ordered in difficulty."""

import numpy as np
import pandas as pd
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_score

from spikeinterface_deepsort.evaluation.multitask.loader import load_datasets
from spikeinterface_deepsort.evaluation.multitask.synthetic import DATASET_SPECS, make_dataset, write_csv_datasets

EXPECTED = {
    "A2": (536, [268, 268]),
    "A3": (346, [173, 173]),
    "A4": (1966, [647, 632, 687]),
    "A12": (1932, [322] * 6),
    "A21": (526, [218, 308]),
}


def test_files_have_the_originals_rows_and_classes(tmp_path):
    paths = write_csv_datasets(tmp_path, seed=3)
    assert [p.name for p in paths] == [f"{name}.csv" for name in EXPECTED]
    for data in load_datasets(tmp_path, min_class_size=5):
        rows, counts = EXPECTED[data.name]
        assert len(data.labels) == rows
        assert sorted(data.class_counts().values()) == sorted(counts)
        assert data.n_samples == 30
    header = paths[0].read_text().splitlines()[0]
    assert header == "," + ",".join(str(i) for i in range(30)) + ",track"


def test_seeded():
    spec = DATASET_SPECS[0]
    pd.testing.assert_frame_equal(make_dataset(spec, seed=1), make_dataset(spec, seed=1))
    assert not make_dataset(spec, seed=1).equals(make_dataset(spec, seed=2))


def test_spikes_have_a_negative_peak_near_sample_10():
    table = make_dataset(DATASET_SPECS[0], seed=0)
    mean = table.drop(columns="track").to_numpy().mean(axis=0)
    assert 8 <= int(np.argmin(mean)) <= 12 and mean.min() < -20


def test_difficulty_differs_as_in_the_originals():
    scores = {}
    for spec in DATASET_SPECS:
        table = make_dataset(spec, seed=0)
        x, y = table.drop(columns="track").to_numpy(), table["track"].to_numpy()
        cv = StratifiedKFold(3, shuffle=True, random_state=0)
        scores[spec.name] = cross_val_score(LinearDiscriminantAnalysis(), x, y, cv=cv).mean()
    assert min(scores, key=scores.get) == "A12"
    assert scores["A2"] > scores["A4"] > scores["A12"]
    assert scores["A2"] > 0.9 and scores["A12"] < 0.5
