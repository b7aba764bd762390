"""Phase 1: supervised evaluation of a reference sorting, and comparison of two sortings.

``classify_units`` measures how well the package's CNN separates a reference sorting's
units; ``compare_sortings`` scores one sorting against another (for instance ours
against Kilosort's) with SpikeInterface's comparison tools.
"""

from .classify import ClassifyResult, classify_units
from .compare import CompareResult, compare_sortings
from .references import detect_reference_format, load_sorting

__all__ = ["ClassifyResult", "classify_units", "CompareResult", "compare_sortings", "detect_reference_format",
           "load_sorting"]
