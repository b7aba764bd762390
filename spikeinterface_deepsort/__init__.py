"""spikeinterface-deepsort: the DeepSpikeSort spike sorter for SpikeInterface.

Importing the package registers the sorter "deepspikesort" with SpikeInterface, so
that ``spikeinterface.sorters.run_sorter("deepspikesort", recording, folder=...)`` runs it.
"""

__version__ = "0.1.0"

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
