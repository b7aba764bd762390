"""The package's error types: every refusal is a DeepSortError (and a ValueError, as SpikeInterface's)."""

import inspect

import pytest

import spikeinterface_deepsort.errors as errors
from spikeinterface_deepsort.errors import DataFormatError, DeepSortError, OutputFolderError, ParameterError, RecordingError


def test_every_refusal_is_one_of_ours():
    """Code written for SpikeInterface's conventions catches ValueError: ours are ValueErrors too."""
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert set(classes) == {DeepSortError, ParameterError, RecordingError, DataFormatError, OutputFolderError}
    for error in classes:
        assert issubclass(error, DeepSortError) and issubclass(error, ValueError), error
        assert error.__doc__, f"{error.__name__} says what it is for"
    for error in (ParameterError, RecordingError, DataFormatError, OutputFolderError):
        with pytest.raises(ValueError, match="the fix"):
            raise error("the problem and the fix")


def test_the_kinds_are_distinct():
    """A caller can tell a bad parameter from a bad recording, file or folder."""
    kinds = [ParameterError, RecordingError, DataFormatError, OutputFolderError]
    for kind in kinds:
        assert [other for other in kinds if issubclass(kind, other)] == [kind]
