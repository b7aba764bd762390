"""Registration with SpikeInterface, done once on import.

SpikeInterface has no plugin entry point for sorters: ``run_sorter`` looks names up in
``sorterlist.sorter_dict`` and ``installed_sorters`` walks ``sorter_full_list``, so the
class is added to both. The clustering stage is also added to SpikeInterface's
clustering methods, where ``find_clusters_from_peaks`` and ``ClusteringStudy`` look.

``run_sorter_jobs(engine="joblib")`` runs jobs in joblib's loky workers, fresh interpreters
that never import this package, so they do not know "deepspikesort". A loky backend whose
workers import the package when they start is registered with joblib as
``JOBLIB_BACKEND``: pass ``engine_kwargs=dict(n_jobs=N, backend="loky-deepspikesort")``.
The dask engine's workers are registered by :func:`dask_worker_plugin` (a dask WorkerPlugin),
the slurm engine's jobs by :func:`slurm_engine_kwargs` (a ``sitecustomize`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

JOBLIB_BACKEND = "loky-deepspikesort"


def register() -> None:
    from spikeinterface.sorters import sorterlist

    from .sorter import DeepSpikeSortSorter

    if DeepSpikeSortSorter not in sorterlist.sorter_full_list:
        sorterlist.sorter_full_list.append(DeepSpikeSortSorter)
    sorterlist.sorter_dict[DeepSpikeSortSorter.sorter_name] = DeepSpikeSortSorter

    from spikeinterface.sortingcomponents.clustering.method_list import clustering_methods

    from .integrations.clustering import DeepClusterClustering

    clustering_methods[DeepClusterClustering.name] = DeepClusterClustering

    from joblib import register_parallel_backend
    from joblib.parallel import LokyBackend

    register_parallel_backend(JOBLIB_BACKEND, functools.partial(
        LokyBackend, initializer=importlib.import_module, initargs=("spikeinterface_deepsort",)))


def dask_worker_plugin():
    """A dask ``WorkerPlugin`` that imports this package in every worker, those that join or
    restart later included: ``client.register_plugin(dask_worker_plugin())`` before
    ``run_sorter_jobs(jobs, engine="dask", engine_kwargs=dict(client=client))``."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class RegisterDeepSpikeSort(WorkerPlugin):
        # defined here so that importing this package never imports distributed; dask sends
        # the class by value (cloudpickle), so workers need nothing but the package itself
        name = "spikeinterface-deepsort"
        idempotent = True

        def setup(self, worker):
            importlib.import_module("spikeinterface_deepsort")

    return RegisterDeepSpikeSort()


SITECUSTOMIZE = '''"""Written by spikeinterface_deepsort.registration.slurm_engine_kwargs.

SpikeInterface's SLURM job script imports only spikeinterface; Python imports the first
sitecustomize on sys.path at start-up, so this one registers the "deepspikesort" sorter there.
A sitecustomize it hides (the environment's own) is run first.
"""
import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _spec is not None and _spec.loader is not None:
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
import spikeinterface_deepsort  # noqa: E402,F401
'''


def slurm_engine_kwargs(folder, sbatch_args: dict | None = None) -> dict:
    """``engine_kwargs`` for ``run_sorter_jobs(jobs, engine="slurm", engine_kwargs=...)`` whose jobs know
    "deepspikesort".

    SpikeInterface writes each job as a Python script that imports only spikeinterface, and
    passes ``sbatch_args`` to ``sbatch`` as ``--name value``. This writes a ``sitecustomize.py``
    that imports this package into ``folder/deepspikesort_site`` (``folder`` also holds the
    job scripts; the compute nodes must see it) and adds that folder to ``PYTHONPATH`` in
    sbatch's ``--export`` (all of the submitting shell's environment, as sbatch's default,
    unless ``sbatch_args["export"]`` says otherwise).
    """
    folder = Path(folder).absolute()
    site = folder / "deepspikesort_site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    paths = [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    python_path = os.pathsep.join(paths)
    if "," in python_path:
        raise ValueError(f"sbatch --export separates variables with commas, and PYTHONPATH {python_path!r} holds one: "
                         "choose a folder (and a PYTHONPATH) without commas.")
    sbatch = {"cpus-per-task": 1, "mem": "1G"} | dict(sbatch_args or {})
    export = str(sbatch.get("export", "ALL"))
    listed = [] if export.upper() in ("NONE", "NIL") else [export]  # NONE: only what is listed (and SLURM_*)
    sbatch["export"] = ",".join(listed + [f"PYTHONPATH={python_path}"])
    return {"tmp_script_folder": str(folder), "sbatch_args": sbatch}
