"""Loading waveform CSV files: the good format, and every malformed variant named clearly."""

import numpy as np
import pytest

from spikeinterface_deepsort.errors import DataFormatError
from spikeinterface_deepsort.evaluation.multitask.loader import load_csv_dataset, load_datasets

HEADER = "," + ",".join(str(i) for i in range(6)) + ",track\n"


def _row(index, label, values=None):
    values = values if values is not None else [float(index + i) for i in range(6)]
    return f"{index}," + ",".join(str(v) for v in values) + f",{label}\n"


def _good_text(n_per_class=3):
    rows = [_row(i, "Track1" if i % 2 else "Track15") for i in range(2 * n_per_class)]
    return HEADER + "".join(rows)


def _write(tmp_path, text, name="A2.csv"):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def test_reads_the_format(tmp_path):
    data = load_csv_dataset(_write(tmp_path, _good_text()), min_class_size=3)
    assert data.name == "A2"
    assert data.waveforms.shape == (6, 6) and data.waveforms.dtype == np.float32
    assert data.classes == ["Track1", "Track15"]
    assert data.class_counts() == {"Track1": 3, "Track15": 3}
    np.testing.assert_allclose(data.waveforms[2], np.arange(2, 8))
    assert data.classes[data.labels[1]] == "Track1"


def test_classes_in_natural_order_and_files_too(tmp_path):
    text = HEADER + "".join(_row(i, f"Track{[15, 3][i % 2]}") for i in range(4))
    for name in ("A12", "A2", "A4"):
        _write(tmp_path, text, f"{name}.csv")
    datasets = load_datasets(tmp_path)
    assert [d.name for d in datasets] == ["A2", "A4", "A12"]
    assert datasets[0].classes == ["Track3", "Track15"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (HEADER.replace(",track", ",label") + _row(0, "a") + _row(1, "b"), "no column 'track'"),
        (HEADER + _row(0, "a") + _row(1, "b", [1, 2, "x", 4, 5, 6]), r"line 3.*column '2'.*'x', not a finite number"),
        (HEADER + _row(0, "a") + _row(1, "b", [1, 2, 3, "", 5, 6]), r"line 3.*column '3'.*missing"),
        (HEADER + _row(0, "a") + _row(1, "b", [1, 2, 3, "nan", 5, 6]), r"line 3.*column '3'"),
        (HEADER + _row(0, "a") + _row(1, "b", [1, 2, 3, "1e39", 5, 6]), r"line 3.*column '3'.*float32 range"),
        ("\r,", "no header line"),
        (HEADER + _row(0, "a") + _row(1, ""), r"line 3, column 'track': the label is missing"),
        (HEADER + _row(0, "a") + _row(1, "a"), "single class"),
        (HEADER + "".join(_row(i, "a") for i in range(5)) + _row(5, "b"), r"'b' has 1 rows, fewer than the 2 folds"),
        ("", "empty"),
        (HEADER, "no data rows"),
        (HEADER.replace(",5,", ",5,extra,") + _row(0, "a", [1, 2, 3, 4, 5, 9, 6]) + _row(1, "b", [1, 2, 3, 4, 5, 9, 6]), "unexpected column 'extra'"),
        (HEADER.replace(",2,", ",") + _row(0, "a", [1, 2, 3, 4, 5]) + _row(1, "b", [1, 2, 3, 4, 5]), "column '2' is missing"),
        (HEADER.replace(",", "idx,", 1) + _row(0, "a") + _row(1, "b"), "unnamed index column"),
        (HEADER + _row(0, "a") + "1,1,2,3,4,5,6,7,8,b\n", "not a well-formed CSV"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "not a"),
    ],
)
def test_malformed_files_are_named(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError, match=expected) as error:
        load_csv_dataset(path, min_class_size=2)
    assert str(path) in str(error.value)


def test_missing_folder_and_no_files(tmp_path):
    with pytest.raises(DataFormatError, match="not a folder"):
        load_datasets(tmp_path / "nowhere")
    with pytest.raises(DataFormatError, match="make-csv-datasets"):
        load_datasets(tmp_path)
