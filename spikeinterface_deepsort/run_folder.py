"""The sorter folder: the one place that knows its layout.

``run_sorter("deepspikesort", recording, folder=OUT)`` gives SpikeInterface's layout: OUT
holds ``spikeinterface_params.json``, ``spikeinterface_log.json``, the saved recording and
``sorter_output/``, which is ours. Each stage writes its result there before the next starts::

    sorter_output/
        seed.json            the run's seed (drawn when seed=None), kept for resume
        stages.json          seconds per stage
        deepspikesort.log    the stages' log lines (SpikeInterface copies it into its log)
        preprocessed/        the preprocessed traces when cached on disk (removed at the end)
        noise_levels.npy  peaks.npy  snippets/  deepcluster/  peak_labels.npy
        round_zero_labels.npy  pseudo_labels="isosplit": iterative-isosplit's clusters, DeepCluster's start
        unit_labels.npy   templates.npz  matching/
        sorting/             the final Sorting

With ``resume`` a stage's result that is already there is read back instead of computed
(:meth:`RunFolder.cached_array`). The report, the exports and resume find a finished sort
through :meth:`RunFolder.locate`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from .errors import OutputFolderError

logger = logging.getLogger("spikeinterface_deepsort")

SORTER_OUTPUT = "sorter_output"
LOG_NAME = "deepspikesort.log"  # SpikeInterface copies sorter_output/<sorter_name>.log into spikeinterface_log.json


class RunFolder:
    """``sorter_output`` of one run: paths of its stage results, atomic saves, resume, the log and
    the stage timer."""

    def __init__(self, path, resume: bool = False):
        self.path = Path(path)
        self.resume = resume

    # ------------------------------------------------------------------ finding a finished sort

    @classmethod
    def locate(cls, folder) -> "RunFolder":
        """The run in ``folder``: the folder given to ``run_sorter`` or its ``sorter_output``.
        Raises :class:`OutputFolderError`, saying what to pass, unless it holds a finished sort."""
        folder = Path(folder)
        if folder.name == SORTER_OUTPUT and (folder / "sorting").exists():
            folder = folder.parent
        if not folder.exists():
            raise OutputFolderError(f"Sorter folder {folder} does not exist.")
        run = cls(folder / SORTER_OUTPUT)
        if not run.sorting_path.exists():
            raise OutputFolderError(
                f"{folder} holds no finished deepspikesort sort (no {run.sorting_path}). Pass the folder given "
                "to run_sorter(..., folder=...) or `deepspikesort sort --output`, after the sort has finished."
            )
        return run

    @property
    def output_folder(self) -> Path:
        """The folder given to ``run_sorter`` (SpikeInterface's files)."""
        return self.path.parent

    @property
    def params_path(self) -> Path:
        return self.output_folder / "spikeinterface_params.json"

    def saved_params(self) -> dict:
        """The sorter parameters this run was started with, as SpikeInterface saved them
        (the defaults where the folder holds none)."""
        from .params import SORTER_PARAMS

        params = SORTER_PARAMS.defaults()
        if self.params_path.exists():
            params.update(json.loads(self.params_path.read_text()).get("sorter_params", {}))
        return params

    def is_finished(self) -> bool:
        """SpikeInterface logged the run as done without error, and its Sorting is there."""
        log = self.output_folder / "spikeinterface_log.json"
        if not (log.exists() and self.sorting_path.is_dir()):
            return False
        try:
            return json.loads(log.read_text()).get("error") is False
        except ValueError:
            return False

    def load_recording(self):
        """The recording that was sorted, reloaded from SpikeInterface's files, or
        :class:`OutputFolderError` saying why it cannot be and how to pass it instead."""
        from spikeinterface.sorters import BaseSorter

        folder = self.output_folder
        path = folder / "spikeinterface_recording.json"
        reason = "the folder holds no saved recording"
        if path.exists() and "warning" in json.loads(path.read_text()):
            reason = "the recording that was sorted could not be saved by SpikeInterface (it is not serialisable)"
        elif path.exists() or (folder / "spikeinterface_recording.pickle").exists():
            try:
                recording = BaseSorter.load_recording_from_folder(folder, with_warnings=False)
                if recording is not None:
                    return recording
            except Exception as error:  # moved or deleted raw data, typically
                reason = f"the saved recording could not be opened ({type(error).__name__}: {error})"
        raise OutputFolderError(
            f"Cannot reload the recording of {folder}: {reason}. Pass it explicitly (recording=... in Python, "
            "--recording PATH on the command line)."
        )

    # ------------------------------------------------------------------ stage results

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def sorting_path(self) -> Path:
        return self.path / "sorting"

    @property
    def snippets_path(self) -> Path:
        return self.path / "snippets"

    @property
    def deepcluster_path(self) -> Path:
        return self.path / "deepcluster"

    @property
    def templates_path(self) -> Path:
        return self.path / "templates.npz"

    def cached_array(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``name``.npy read back when resuming and present; else computed and saved atomically."""
        return self.cached_arrays((name,), lambda: (compute(),))[0]

    def cached_arrays(self, names: tuple[str, ...], compute: Callable[[], tuple]) -> tuple[np.ndarray, ...]:
        """Several results of one computation, each as :meth:`cached_array` keeps it (all read back or none)."""
        paths = [self.path / f"{name}.npy" for name in names]
        if self.resume and all(path.exists() for path in paths):
            return tuple(np.load(path) for path in paths)
        arrays = tuple(np.asarray(array) for array in compute())
        for path, array in zip(paths, arrays):
            tmp = path.with_name(f"{path.stem}.tmp.npy")
            np.save(tmp, array)
            os.replace(tmp, path)  # a killed run never leaves a truncated stage file
        return arrays

    def cached_templates(self, compute: Callable[[], object], recording):
        """The templates for matching, read back when resuming (``templates.npz``), else computed and saved."""
        from spikeinterface.core import Templates

        path = self.templates_path
        if self.resume and path.exists():
            data = np.load(path)
            return Templates(
                templates_array=data["templates_array"], sampling_frequency=recording.get_sampling_frequency(),
                nbefore=int(data["nbefore"]), channel_ids=recording.channel_ids, unit_ids=data["unit_ids"],
                sparsity_mask=data["sparsity_mask"], probe=recording.get_probe(), is_in_uV=False,
            )
        templates = compute()
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, templates_array=templates.templates_array, sparsity_mask=templates.sparsity.mask,
                 unit_ids=templates.unit_ids, nbefore=templates.nbefore)
        os.replace(tmp, path)
        return templates

    def save_sorting(self, sorting):
        """Save to a temporary folder, then rename: a crash never leaves a half-written Sorting that loads."""
        from spikeinterface.core import load

        tmp = self.sorting_path.with_name("sorting.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with warnings.catch_warnings():  # an in-memory Sorting has no provenance to record: expected, not news
            warnings.filterwarnings("ignore", message="The extractor is not serializable")
            sorting.save(folder=tmp)
        shutil.rmtree(self.sorting_path, ignore_errors=True)
        os.replace(tmp, self.sorting_path)
        return load(self.sorting_path)

    def make_loadable_by_spikeinterface(self) -> None:
        """Let ``si.load(OUT)`` read the final Sorting in a process that never imported this package.

        SpikeInterface reads a run_sorter folder by looking the sorter's class up by name, which
        only a process that imported the package can. Its loader looks for
        ``spikeinterface_info.json`` first: naming the folder a Sorting there, beside the
        Sorting's own description (``si_folder.json``, paths relative to the folder, so it may be
        moved), makes it load as the saved Sorting. ``read_sorter_folder`` still needs the import.
        """
        from spikeinterface import __version__ as si_version
        from spikeinterface.core import load

        top = self.output_folder
        load(self.sorting_path).dump_to_json(top / "si_folder.json", relative_to=top)
        (top / "spikeinterface_info.json").write_text(json.dumps({"version": si_version, "object": "Sorting"}))

    def save_empty_sorting(self, recording, reason: str):
        """An empty Sorting, with a warning that says why."""
        from spikeinterface.core import NumpySorting

        warnings.warn(f"deepspikesort: {reason}; returning an empty Sorting.")
        logger.warning("%s; returning an empty Sorting", reason)
        empty = NumpySorting.from_unit_dict([{} for _ in range(recording.get_num_segments())],
                                            recording.get_sampling_frequency())
        return self.save_sorting(empty)

    # ------------------------------------------------------------------ seed, log, stage timer

    def saved_seed(self) -> int | None:
        """The seed an interrupted run kept, when resuming."""
        return self._seed_file() if self.resume else None

    def run_seed(self) -> int:
        """The seed the sort ran with (its seed.json: the one drawn when seed=None); 0 for a folder without one."""
        seed = self._seed_file()
        return 0 if seed is None else seed

    def _seed_file(self) -> int | None:
        path = self.path / "seed.json"
        return int(json.loads(path.read_text())["seed"]) if path.exists() else None

    def save_seed(self, seed: int) -> None:
        (self.path / "seed.json").write_text(json.dumps({"seed": seed}))

    @contextmanager
    def logging_to_file(self, verbose: bool):
        """The package's INFO lines into ``deepspikesort.log`` (and to the console with ``verbose``
        when the caller configured no logging)."""
        handler = logging.FileHandler(self.path / LOG_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        previous_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        console = None
        if verbose and not logging.getLogger().handlers:
            console = logging.StreamHandler()
            console.setFormatter(logging.Formatter("deepspikesort %(message)s"))
            logger.addHandler(console)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            handler.close()
            if console is not None:
                logger.removeHandler(console)
            logger.setLevel(previous_level)

    @contextmanager
    def stage(self, name: str):
        """Log the stage's start and duration and keep the duration in ``stages.json``.

        Every stage starts with the BLAS and OpenMP thread pools the caller had, and leaves them
        so: SpikeInterface's thread engine limits every pool to one thread around each chunk with
        threadpoolctl, and when two worker threads overlap one restores the limit the other set,
        which could leave the process (and so PyTorch's training) single-threaded. threadpoolctl
        with no limit changes nothing and restores every pool's size on exit.
        """
        path = self.path / "stages.json"
        durations = json.loads(path.read_text()) if path.exists() else {}
        logger.info("stage %s: started", name)
        t0 = time.perf_counter()
        with threadpool_limits(limits=None):
            yield
        seconds = time.perf_counter() - t0
        durations[name] = round(seconds, 3)
        tmp = path.with_name("stages.tmp.json")
        tmp.write_text(json.dumps(durations, indent=2))
        os.replace(tmp, path)  # killed while writing, a run must still find the durations it resumes with
        logger.info("stage %s: done in %.1f s", name, seconds)
