"""All settings of the sorter, in one documented table.

``SORTER_PARAMS`` is the single source of truth: ``run_sorter``'s defaults and
descriptions, the command line's ``--param NAME=VALUE``, validation, and the
parameter reference in the docs are all generated from it.
"""

from __future__ import annotations

import ast
import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import ParameterError
from .settings import resolve_device

_NUMBER = (int, float)


@dataclass(frozen=True)
class Param:
    """One setting: its name, default, accepted types, meaning and allowed range."""

    name: str
    default: Any
    types: tuple
    description: str
    group: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    strictly_positive: bool = False
    allow_none: bool = False
    validator: Callable[[Any], Any] | None = None  # further check; raises ParameterError

    def type_names(self) -> str:
        names = [t.__name__ for t in self.types]
        if self.allow_none:
            names.append("None")
        return " | ".join(names)

    def check(self, value: Any) -> Any:
        """Return ``value`` (ints promoted to float where a float is expected) or raise."""
        if value is None and self.allow_none:
            return None
        if isinstance(value, bool) and bool not in self.types:
            raise ParameterError(self._type_message(value))
        if not isinstance(value, self.types):
            raise ParameterError(self._type_message(value))
        if float in self.types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.validator is not None:
            self.validator(value)
        if self.choices is not None and value not in self.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"Parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}.{hint} {self.description}"
            )
        if isinstance(value, _NUMBER) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ParameterError(f"Parameter {self.name!r} must be a finite number, got {value!r}.")
            if self.strictly_positive and value <= 0:
                raise ParameterError(f"Parameter {self.name!r} must be > 0, got {value!r}. {self.description}")
            if self.minimum is not None and value < self.minimum:
                raise ParameterError(
                    f"Parameter {self.name!r} must be >= {self.minimum}, got {value!r}. {self.description}"
                )
            if self.maximum is not None and value > self.maximum:
                raise ParameterError(
                    f"Parameter {self.name!r} must be <= {self.maximum}, got {value!r}. {self.description}"
                )
        return value

    def _type_message(self, value: Any) -> str:
        return (
            f"Parameter {self.name!r} must be of type {self.type_names()}, got {type(value).__name__} {value!r}. "
            f"{self.description} Default: {self.default!r}."
        )


class ParamSchema:
    """An ordered table of :class:`Param` with validation and command-line parsing."""

    def __init__(self, params: Iterable[Param]):
        self.params = {p.name: p for p in params}

    def defaults(self) -> dict:
        return {name: _copy_default(p.default) for name, p in self.params.items()}

    def descriptions(self) -> dict:
        return {name: p.description for name, p in self.params.items()}

    def validate(self, values: dict) -> dict:
        """Defaults updated with ``values``, every entry checked; unknown names are refused."""
        if not isinstance(values, dict):
            raise ParameterError(f"Parameters must be given as a dict, got {type(values).__name__}.")
        unknown = [name for name in values if name not in self.params]
        if unknown:
            raise ParameterError(
                " ".join(self.unknown_name_message(name) for name in unknown)
                + " See get_sorter_params_description('deepspikesort') for what each one does."
            )
        merged = self.defaults()
        for name, value in values.items():
            merged[name] = self.params[name].check(value)
        return merged

    def group(self, values: dict, name: str) -> dict:
        """The entries of ``values`` in group ``name``: what the stage of that name reads."""
        return {p.name: values[p.name] for p in self.params.values() if p.group == name}

    def unknown_name_message(self, name: str) -> str:
        """'Unknown parameter X', with the closest valid names (typos) or, lacking any, all of them."""
        close = difflib.get_close_matches(str(name), self.params, n=3, cutoff=0.6)
        if close:
            return f"Unknown parameter {name!r}: did you mean {' or '.join(repr(c) for c in close)}?"
        return f"Unknown parameter {name!r}. Valid parameters are: {', '.join(sorted(self.params))}."

    def parse_assignment(self, text: str) -> tuple[str, Any]:
        """Parse a command-line ``NAME=VALUE``; VALUE is read as a Python literal when it is one."""
        if "=" not in text:
            raise ParameterError(f"--param expects NAME=VALUE, got {text!r} (for example --param detect_threshold=5.5).")
        name, raw = (part.strip() for part in text.split("=", 1))
        if name not in self.params:
            raise ParameterError(self.unknown_name_message(name) + " `deepspikesort params` lists them all.")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        if raw in ("none", "null"):
            value = None
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        return name, self.params[name].check(value)

    def markdown_table(self) -> str:
        rows = ["| parameter | default | type | description |", "|---|---|---|---|"]
        group = None
        for p in self.params.values():
            if p.group != group:
                group = p.group
                rows.append(f"| **{group}** | | | |")
            types = p.type_names().replace("|", "\\|")  # a bare "|" in "int | float" would split the cell
            rows.append(f"| `{p.name}` | `{p.default!r}` | {types} | {p.description} |")
        return "\n".join(rows)


def _copy_default(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


SORTER_PARAMS = ParamSchema(
    [
        # preprocessing
        Param("apply_preprocessing", True, (bool,), "Bandpass, common median reference and whitening. Switch off for data that is already preprocessed (it must then be float, centred and roughly whitened).", "preprocessing"),
        Param("freq_min", 300.0, _NUMBER, "Bandpass low cut-off in Hz.", "preprocessing", strictly_positive=True),
        Param("freq_max", 6000.0, _NUMBER, "Bandpass high cut-off in Hz (capped below Nyquist).", "preprocessing", strictly_positive=True),
        Param("common_reference", "auto", (str,), "Global median common reference: 'auto' applies it with 8 channels or more, where a median over channels estimates shared noise rather than spikes.", "preprocessing", choices=("auto", "on", "off")),
        Param("whitening", True, (bool,), "Local whitening (SpikeInterface's whiten, mode='local').", "preprocessing"),
        Param("whitening_radius_um", 100.0, _NUMBER, "Radius of the local whitening neighbourhood in µm.", "preprocessing", strictly_positive=True),
        Param("motion_correction", "auto", (str,), "Motion correction before detection with SpikeInterface's correct_motion: 'auto' applies it to probes whose contacts span >= 100 µm along depth (not tetrodes), 'on' always, 'off' never.", "preprocessing", choices=("auto", "on", "off")),
        Param("motion_preset", "dredge_fast", (str,), "correct_motion preset used when motion correction is on.", "preprocessing"),
        Param("cache_preprocessing", "folder", (str,), "Compute the preprocessing once for all later stages: 'folder' (a float32 copy in the sorter folder, deleted at the end: memory stays bounded however long the recording, and a resumed run reads the copy back), 'memory' (faster where the sorter folder is on a slow or network disk), 'auto' (memory up to 512 MiB, folder beyond) or 'off' (recompute at each stage).", "preprocessing", choices=("auto", "memory", "folder", "off")),
        Param("preset", "default", (str,), "'ibl' adds Neuropixels/IBL preprocessing: phase shift, bad-channel detection and interpolation, high-pass spatial filter (destriping).", "preprocessing", choices=("default", "ibl")),
        # detection
        Param("peak_sign", "neg", (str,), "Sign of the spike peaks to detect.", "detection", choices=("neg", "pos", "both")),
        Param("detection_method", "matched_filtering", (str,), "SpikeInterface peak detector: 'matched_filtering' (traces filtered with a spike prototype over neighbouring channels, then thresholded: finds units spread over many contacts that no single channel shows) or 'locally_exclusive' (plain threshold crossings).", "detection", choices=("matched_filtering", "locally_exclusive")),
        Param("detect_threshold", 4.5, _NUMBER, "Detection threshold in multiples of the noise level (MAD): lower finds smaller units and more noise crossings.", "detection", strictly_positive=True),
        Param("detection_radius_um", 100.0, _NUMBER, "Radius in µm within which a peak must be the largest to be detected (locally exclusive).", "detection", strictly_positive=True),
        Param("exclude_sweep_ms", 1.0, _NUMBER, "Dead time in ms within which a second peak in the neighbourhood is ignored.", "detection", strictly_positive=True),
        # snippets
        Param("snippet_ms_before", 1.0, _NUMBER, "Snippet start before the peak, in ms.", "snippets", strictly_positive=True),
        Param("snippet_ms_after", 1.5, _NUMBER, "Snippet end after the peak, in ms.", "snippets", strictly_positive=True),
        Param("snippet_radius_um", 60.0, _NUMBER, "Channels within this distance of the peak's channel are cut into the snippet (the nearest channels first).", "snippets", strictly_positive=True),
        Param("max_snippet_channels", 8, (int,), "At most this many channels per snippet (the nearest ones).", "snippets", minimum=1),
        # clustering
        Param("clustering", "deepcluster", (str,), "How the detected peaks become units before curation and matching. 'deepcluster': the CNN trained DeepCluster-style on the peaks' snippets, then HDBSCAN on its embedding and the peak's position (the DeepCluster and units settings below). 'iterative-hdbscan' (spykingcircus2's) or 'iterative-isosplit' (lupin's and tridesclous2's): SpikeInterface's own clustering of the same peaks, with its default settings; the DeepCluster and units settings are then not used.", "clustering", choices=("deepcluster", "iterative-hdbscan", "iterative-isosplit")),
        # DeepCluster
        Param("embedding_dim", 16, (int,), "Size of the CNN embedding.", "deepcluster", minimum=2),
        Param("max_training_peaks", 40000, (int,), "DeepCluster trains on a seeded random subsample of at most this many peaks; all peaks are embedded and labelled afterwards. Bounds memory and time on long recordings.", "deepcluster", minimum=100),
        Param("cluster_factor", 1.0, _NUMBER, "k-means pseudo-labels use this many clusters per channel of the probe (at least 10): more clusters than units are expected, as DeepCluster over-clusters, but not so many that one unit is cut into arbitrary pieces the network then learns to tell apart.", "deepcluster", minimum=0.1),
        Param("kmeans_runs", 1, (int,), "k-means runs from different starts whose partitions are intersected into each round's pseudo-labels: two units stay apart in what the network learns when any run separates them (one run can give a small unit the cluster of a large neighbour, and the network then learns to merge the two). Intersections of fewer than 60 training peaks join the largest one in their first-run cluster. 1 (one run) is the default: 3 runs rose on the dev split but lost a unit of the test split's tetrode (docs/defaults.md).", "deepcluster", minimum=1),
        Param("max_rounds", 1, (int,), "Maximum number of DeepCluster rounds (embed, cluster, train). One round trains on k-means pseudo-labels of the snippets' PCA; later rounds re-cluster the network's own embedding.", "deepcluster", minimum=1),
        Param("steps_per_round", 150, (int,), "Optimiser steps on each round's pseudo-labels (batches drawn uniformly over clusters). A fixed count rather than an epoch, so short and long recordings train alike.", "deepcluster", minimum=1),
        Param("nmi_stop", 0.95, _NUMBER, "Stop when the NMI between consecutive rounds' assignments exceeds this, or when it rises by less than 0.01 from one round to the next.", "deepcluster", minimum=0.0, maximum=1.0),
        Param("batch_size", 128, (int,), "Training batch size (embedding uses at least 512; halved automatically after a CUDA out-of-memory error).", "deepcluster", minimum=1),
        Param("learning_rate", 1e-3, _NUMBER, "Adam learning rate.", "deepcluster", strictly_positive=True),
        Param("stochastic_embedding", False, (bool,), "Embed the peaks for clustering with the network's dropout active (one pass, seeded) instead of deterministically: the noise it adds smooths the density HDBSCAN sees, but every unit's borders then depend on that draw, and the Sorting changes more from one seed (or one tiny change of the input) to the next.", "deepcluster"),
        Param("pseudo_labels", "kmeans", (str,), "What each DeepCluster round trains on. 'kmeans': k-means clusters of the embedding (cluster_factor per channel), after which HDBSCAN forms the units. 'isosplit': round 0's clusters are SpikeInterface's iterative-isosplit clustering of the raw snippets; each round trains the CNN on the current clusters, then merges them (or redraws their boundaries) with ISO-SPLIT's isocut tests on the learned embedding and the peak's position; the last round's clusters are the units (HDBSCAN and min_cluster_size are not used; clusters of fewer than 10 peaks are dropped).", "deepcluster", choices=("kmeans", "isosplit")),
        Param("features", "learned", (str,), "What HDBSCAN forms the units from, beside the peak's position. 'learned': the embedding of the CNN trained DeepCluster-style. 'pca': the first embedding_dim principal components of the raw snippets, no network trained: the baseline the learned embedding replaces, with every other stage the same.", "deepcluster", choices=("learned", "pca")),
        Param("augment", True, (bool,), "Augment training snippets with noise, time jitter and amplitude scaling.", "deepcluster"),
        # units
        Param("position_weight", 1.0, _NUMBER, "Weight of the peak's position on the probe (in units of 20 µm) beside the standardised learned embedding when units are formed.", "units", minimum=0.0),
        Param("min_cluster_size", 30, (int,), "HDBSCAN's minimum cluster size when units are formed from the embedding; smaller clusters are outliers.", "units", minimum=2),
        Param("small_unit_size", 10, (int,), "The peaks left as outliers by the first HDBSCAN pass are clustered again with this minimum cluster size, so that slow-firing units (fewer spikes than min_cluster_size) get a unit; curation keeps such a unit when its template stands well out of the noise and either no first-pass unit nearby has a similar template or, far out of the noise, no nearby unit or pair of units explains it (a slow neuron beside a faster one). 0 turns the second pass off.", "units", minimum=0),
        Param("assign_outliers", True, (bool,), "Peaks that HDBSCAN leaves as outliers join a unit when most of their 10 nearest unit peaks (in the embedding and position) belong to it and they lie within three times that unit's own spread; far-off noise crossings stay outliers. False keeps HDBSCAN's outliers out of every unit (matching still finds their spikes).", "units"),
        # splitting
        Param("local_split", True, (bool,), "After the units are formed, each one is split again where SpikeInterface's local split (iterative-hdbscan's: HDBSCAN on 3 SVD components of the unit's peaks on the channels they share, recursively up to 3 levels) finds several clusters; curation then merges pieces that are one neuron. Parts a unit the learned embedding holds together when a small neighbour shares its channels.", "splitting"),
        # curation
        Param("merge_max_template_diff", 0.3, _NUMBER, "Curation before matching: nearby units (main channels within 50 µm) whose templates differ by less than this (normalised L1, SpikeInterface's definition; where the difference is mostly the noise that averaging so few spikes leaves, as for a small piece of a low-SNR unit, that noise is taken off first) and whose spike trains share one refractory period are merged, most similar first; 0 switches merging off.", "curation", minimum=0.0, maximum=1.0),
        # matching
        Param("matching_method", "circus-omp", (str,), "SpikeInterface template matching engine used to find all spikes, overlapping ones included; 'none' keeps the clustered peaks only.", "matching", choices=("circus-omp", "tdc-peeler", "wobble", "nearest", "none")),
        Param("template_ms_before", 1.0, _NUMBER, "Template start before the peak, in ms.", "matching", strictly_positive=True),
        Param("template_ms_after", 2.0, _NUMBER, "Template end after the peak, in ms.", "matching", strictly_positive=True),
        Param("template_radius_um", 100.0, _NUMBER, "Template sparsity radius in µm around the unit's main channel.", "matching", strictly_positive=True),
        Param("min_template_snr", 2.5, _NUMBER, "Units whose template peak-to-peak SNR is below this are dropped before matching.", "matching", minimum=0.0),
        Param("min_fit_z", 4.0, _NUMBER, "Matched spikes are kept when their fit stands out of the noise: fitted amplitude x squared norm of the template >= min_fit_z x the template's projection noise (robust std on random stretches of traces). Removes noise fitted by units barely above it; 0 keeps every fit.", "matching", minimum=0.0),
        # run
        Param("device", "auto", (str,), "'auto' (CUDA if available), 'cpu', 'cuda' or 'cuda:N'; a GPU device is refused where PyTorch sees none.", "run", validator=resolve_device),
        Param("torch_threads", 1, (int,), "CPU threads of the sort's own process: PyTorch's (DeepCluster's training and embedding, motion estimation) and the BLAS and OpenMP pools of its PCA, k-means and HDBSCAN steps; SpikeInterface's workers follow job_kwargs instead. With one thread the Sorting does not depend on the machine's core count or load, and no waiting thread takes cores that other programs share; more threads train faster on idle cores, but PyTorch's sums then depend on the thread count, and so may the Sorting. None keeps PyTorch's and the pools' own settings (one thread per core).", "run", minimum=1, allow_none=True),
        Param("seed", 0, (int,), "Seed of every random choice; the same seed on the same machine gives the same Sorting.", "run", minimum=0, allow_none=True),
        Param("resume", False, (bool,), "Continue an interrupted run in the same folder from its last finished stage or epoch (used with the Python API, run_deepspikesort, or the command line's --resume).", "run"),
        Param("make_report", False, (bool,), "Write the HTML report (figures and quality metrics) into the sorter folder at the end.", "run"),
        Param("job_kwargs", {}, (dict,), "SpikeInterface job_kwargs (n_jobs, chunk_duration, progress_bar, ...) for preprocessing, detection, snippet extraction and matching. Without n_jobs here, SpikeInterface's global job_kwargs decide (set_global_job_kwargs), and where those were never set every core the process may use runs a job. Without a chunk setting here, the one pass that caches the preprocessed traces reads chunks of at least 8 MiB.", "run"),
    ]
)
