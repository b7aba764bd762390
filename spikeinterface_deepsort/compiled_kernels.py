"""SpikeInterface's numba kernels that a sort calls, compiled once per machine instead of once per process.

SpikeInterface declares its peak-detection kernels without numba's ``cache=True``, so every new
process compiles them again: about 4 s of a 20-s sort of a one-minute 32-channel recording
(locally exclusive detection 2.5 s, matched filtering 1.6 s, the spike-vector-to-trains loop
0.3 s). Turning on numba's own cache for those dispatchers, before their first call, makes later
processes load the compiled code from disk. Numba keys each entry by the source file's time
stamp, the argument types and the CPU, writes it atomically, and falls back to a per-user
folder (or ``NUMBA_CACHE_DIR``) where the package folder is read-only; the machine code is the
same as a fresh compilation's, so the Sorting does not change.
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger("spikeinterface_deepsort")


def _dispatchers() -> list:
    from spikeinterface.core.sorting_tools import get_numba_vector_to_list_of_spiketrain
    from spikeinterface.sortingcomponents.peak_detection import locally_exclusive, matched_filtering

    return [locally_exclusive.detect_peaks_numba_locally_exclusive_on_chunk,
            matched_filtering._numba_detect_peak_matched_filtering,
            get_numba_vector_to_list_of_spiketrain()]  # SpikeInterface keeps and reuses the one it built


@functools.cache
def cache_compiled_kernels() -> None:
    """Turn on numba's disk cache for the kernels above, once per process. Where no cache folder
    can be written, the kernels are compiled as before."""
    try:
        dispatchers = _dispatchers()
    except (ImportError, AttributeError) as error:  # numba missing, or SpikeInterface moved a kernel
        logger.debug("numba kernels not cached: %s", error)
        return
    for dispatcher in dispatchers:
        try:
            dispatcher.enable_caching()
        except RuntimeError as error:  # "no locator available": nowhere to write the cache
            logger.debug("numba kernel %s not cached: %s", dispatcher.__name__, error)
