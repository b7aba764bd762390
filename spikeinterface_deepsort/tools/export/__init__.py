"""Exports of a sorting for the tools users open next.

- :mod:`.alf`: IBL's ALF files (``one.alf.io.load_object``, brainbox, phylib's ``alf2phy``);
- :mod:`.phy`: Phy's template-gui folder in Kilosort's format (Phy, phylib, bombcell);
- :mod:`.common`: the sorter folder read back, the analyzer, the one unit depth, binary layouts.

Both write their output folder whole or not at all (``output_folders.atomic_output``).
"""

from .alf import IBL_METRICS, cluster_uuids, export_to_alf, ibl_cluster_metrics
from ..analyzer import UNIT_LOCATION_METHOD, build_analyzer, unit_depths, unit_locations
from .common import EXPORT_INFO, load_sorter_folder
from .phy import bombcell_parameters, export_phy

__all__ = ["EXPORT_INFO", "IBL_METRICS", "UNIT_LOCATION_METHOD", "bombcell_parameters", "build_analyzer",
           "cluster_uuids", "export_phy", "export_to_alf", "ibl_cluster_metrics", "load_sorter_folder",
           "unit_depths", "unit_locations"]
