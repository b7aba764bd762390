"""Reading and validating waveform CSV files.

The format: a header row, an unnamed first column holding the row index, waveform
columns named ``0`` ... ``N-1`` (one voltage sample each) and a string column ``track``
holding the label. Every problem is reported as a :class:`DataFormatError` naming the
file, the line (as a text editor counts it, the header being line 1) and the column.
"""

from __future__ import annotations

import io

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataFormatError

LABEL_COLUMN = "track"
MIN_SAMPLES = 4  # the CNN trunk pools twice by 2
FORMAT_HINT = (
    "Expected a header row, an unnamed index column, waveform columns named 0..N-1 "
    "and a string column 'track' (for example ',0,1,...,29,track')."
)


@dataclass
class WaveformDataset:
    """One file: waveforms (rows x samples, float32), integer labels and the class names."""

    name: str
    waveforms: np.ndarray
    labels: np.ndarray
    classes: list[str]

    @property
    def n_samples(self) -> int:
        return int(self.waveforms.shape[1])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return dict(zip(self.classes, counts.tolist()))


def _natural_key(text: str) -> list:
    """'A12' sorts after 'A4' and 'Track15' after 'Track3'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _read_text_table(path: Path) -> pd.DataFrame:
    try:
        # The whole file is decoded here, so a bad byte anywhere is reported as a format error.
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not a text CSV file ({error}). {FORMAT_HINT}") from None
    if "\x00" in text:
        raise DataFormatError(f"{path}: binary content, not a CSV file. {FORMAT_HINT}")
    if not text.strip():
        raise DataFormatError(f"{path}: the file is empty. {FORMAT_HINT}")
    try:
        # Everything as text first, so that bad cells are reported rather than silently coerced.
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        # Text such as "\r," has characters but no header line pandas can read.
        raise DataFormatError(f"{path}: no header line with column names. {FORMAT_HINT}") from None
    except pd.errors.ParserError as error:
        raise DataFormatError(f"{path}: not a well-formed CSV file ({error}). Every line must have the same number of fields as the header.") from None


def _waveform_columns(path: Path, columns: list[str]) -> list[str]:
    """Check the header and return the waveform column names in order."""
    if columns[0] != "" and not columns[0].startswith("Unnamed: 0"):
        raise DataFormatError(
            f"{path}: line 1, column 1 is named {columns[0]!r} but must be the unnamed index column. {FORMAT_HINT}"
        )
    if LABEL_COLUMN not in columns:
        raise DataFormatError(f"{path}: line 1 has no column {LABEL_COLUMN!r} (the label of each waveform). {FORMAT_HINT}")
    waveform = [name for name in columns[1:] if name != LABEL_COLUMN]
    for position, name in enumerate(waveform):
        if name != str(position):
            expected = str(position)
            problem = f"column {expected!r} is missing" if expected not in waveform else f"column {expected!r} is out of order"
            if not name.strip().isdigit():
                problem = f"unexpected column {name!r}"
            column_number = columns.index(name) + 1
            raise DataFormatError(
                f"{path}: line 1, column {column_number}: {problem}; waveform columns must be named 0..N-1 in order "
                f"with nothing else but the index and {LABEL_COLUMN!r}. {FORMAT_HINT}"
            )
    if len(waveform) < MIN_SAMPLES:
        raise DataFormatError(f"{path}: line 1 names {len(waveform)} waveform columns; at least {MIN_SAMPLES} are needed.")
    return waveform


def _parse_samples(path: Path, table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    raw = table[columns]
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    # Samples are stored as float32, so a number beyond its range (1e39) would turn into inf.
    bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        cell = raw.iat[row, col]
        missing = pd.isna(cell) or str(cell).strip() == ""
        what = "is missing" if missing else f"is {cell!r}, not a finite number within float32 range"
        column_number = table.columns.get_loc(columns[col]) + 1
        raise DataFormatError(
            f"{path}: line {row + 2} (row index {table.iat[row, 0]!r}), column {columns[col]!r} (field {column_number}): "
            f"the sample {what}. Fill in or remove that row."
        )
    return values.astype(np.float32)


def _parse_labels(path: Path, table: pd.DataFrame, min_class_size: int) -> tuple[np.ndarray, list[str]]:
    labels = table[LABEL_COLUMN].fillna("").astype(str).str.strip()
    empty = np.flatnonzero(labels.to_numpy() == "")
    if empty.size:
        row = int(empty[0])
        raise DataFormatError(f"{path}: line {row + 2}, column {LABEL_COLUMN!r}: the label is missing. Give every row a track name.")
    classes = sorted(labels.unique(), key=_natural_key)
    if len(classes) < 2:
        raise DataFormatError(
            f"{path}: column {LABEL_COLUMN!r} holds a single class ({classes[0]!r}); at least two are needed to classify."
        )
    counts = labels.value_counts()
    small = [name for name in classes if counts[name] < min_class_size]
    if small:
        details = ", ".join(f"{name!r} has {counts[name]}" for name in small)
        raise DataFormatError(
            f"{path}: column {LABEL_COLUMN!r}: {details} rows, fewer than the {min_class_size} folds; "
            f"use fewer folds (--folds) or remove that class."
        )
    index = {name: i for i, name in enumerate(classes)}
    return labels.map(index).to_numpy(dtype=np.int64), classes


def load_csv_dataset(path: str | Path, min_class_size: int = 2) -> WaveformDataset:
    """Read and validate one file; ``min_class_size`` is usually the number of folds."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file.")
    table = _read_text_table(path)
    if table.empty:
        raise DataFormatError(f"{path}: the header is there but no data rows follow.")
    columns = [str(name) for name in table.columns]
    table.columns = columns
    waveform_columns = _waveform_columns(path, columns)
    waveforms = _parse_samples(path, table, waveform_columns)
    labels, classes = _parse_labels(path, table, min_class_size)
    return WaveformDataset(path.stem, waveforms, labels, classes)


def load_datasets(folder: str | Path, names: list[str] | None = None, min_class_size: int = 2) -> list[WaveformDataset]:
    """Every ``*.csv`` in ``folder`` (or only ``names``), in natural order (A2, A3, A4, A12, A21)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: not a folder. Point --data at the folder holding the CSV files.")
    if names:
        paths = [folder / f"{name}.csv" for name in names]
    else:
        paths = sorted(folder.glob("*.csv"), key=lambda p: _natural_key(p.stem))
    if not paths:
        raise DataFormatError(f"{folder}: no *.csv files. Create synthetic ones with 'deepspikesort make-csv-datasets {folder}'.")
    return [load_csv_dataset(path, min_class_size) for path in paths]
