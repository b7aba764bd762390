"""spikeinterface-deepsort: the DeepSpikeSort spike sorter for SpikeInterface.

Importing the package registers the sorter "deepspikesort" with SpikeInterface, so
that ``spikeinterface.sorters.run_sorter("deepspikesort", recording, folder=...)`` runs it.
"""

import os as _os

# PyTorch's OpenMP threads spin-wait between parallel regions by default, taking cores that
# other programs on a shared machine need; waiting passively costs nothing measurable on idle
# cores (docs/benchmarks.md, "Shared cores"). libgomp reads the policy once, when torch loads
# it, so it is set before any import below; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .version import __version__  # noqa: E402
from .errors import DataFormatError, DeepSortError, OutputFolderError, ParameterError, RecordingError  # noqa: E402
from .params import SORTER_PARAMS  # noqa: E402
from .pipeline import run_deepspikesort  # noqa: E402
from .registration import register  # noqa: E402
from .sorter import DeepSpikeSortSorter, resume_sorting  # noqa: E402

register()

__all__ = [
    "__version__",
    "DeepSpikeSortSorter",
    "run_deepspikesort",
    "resume_sorting",
    "SORTER_PARAMS",
    "DeepSortError",
    "ParameterError",
    "RecordingError",
    "DataFormatError",
    "OutputFolderError",
]
