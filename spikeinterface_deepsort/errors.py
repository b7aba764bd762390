"""The package's own error types.

Every error a user can cause is raised as a subclass of :class:`DeepSortError` with a
message that names the problem and the fix, before any long work starts. They also
derive from ``ValueError`` so that code written against SpikeInterface's conventions
(which raises ``ValueError`` for bad arguments) keeps catching them.
"""


class DeepSortError(ValueError):
    """Base class of every error raised on purpose by spikeinterface-deepsort."""


class ParameterError(DeepSortError):
    """A parameter is unknown, of the wrong type or out of range."""


class RecordingError(DeepSortError):
    """The recording cannot be sorted as it is (no probe, NaN samples, too short...)."""


class DataFormatError(DeepSortError):
    """An input file (CSV, reference sorting, ...) is malformed."""


class OutputFolderError(DeepSortError):
    """The output folder exists, is not writable, or is from an incompatible run."""
