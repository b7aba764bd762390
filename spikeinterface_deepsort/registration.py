"""Registration with SpikeInterface, done once on import.

SpikeInterface has no plugin entry point for sorters: ``run_sorter`` looks names up in
``sorterlist.sorter_dict`` and ``installed_sorters`` walks ``sorter_full_list``, so the
class is added to both.
"""

from __future__ import annotations


def register() -> None:
    from spikeinterface.sorters import sorterlist

    from .sorter import DeepSpikeSortSorter

    if DeepSpikeSortSorter not in sorterlist.sorter_full_list:
        sorterlist.sorter_full_list.append(DeepSpikeSortSorter)
    sorterlist.sorter_dict[DeepSpikeSortSorter.sorter_name] = DeepSpikeSortSorter
