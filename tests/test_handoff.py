"""Hand-off to the rest of the SpikeInterface workflow: load, analyse, export to Phy."""

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.sorters as ss


@pytest.fixture(scope="session")
def handoff_folder(sorter_folder):
    return sorter_folder  # the report tests' sort (conftest.py), built once per session


def test_sorting_loads_with_si_load(handoff_folder):
    sorting = sic.load(handoff_folder / "sorter_output" / "sorting")
    assert len(sorting.unit_ids) > 0
    assert sorting.to_spike_vector().size > 0
    # SpikeInterface's own reader of a sorter folder gives the same Sorting.
    again = ss.read_sorter_folder(handoff_folder)
    assert list(again.unit_ids) == list(sorting.unit_ids)
    for unit_id in sorting.unit_ids:
        np.testing.assert_array_equal(again.get_unit_spike_train(unit_id), sorting.get_unit_spike_train(unit_id))


def test_analyzer_and_phy_export(handoff_folder, tmp_path):
    import spikeinterface.exporters as sexp
    import spikeinterface.extractors as se

    sorting = sic.load(handoff_folder / "sorter_output" / "sorting")
    recording = ss.BaseSorter.load_recording_from_folder(handoff_folder)
    assert recording is not None
    analyzer = sic.create_sorting_analyzer(sorting, recording, format="memory", sparse=True, seed=0)
    analyzer.compute(["random_spikes", "templates", "noise_levels"], n_jobs=1, progress_bar=False)
    templates = analyzer.get_extension("templates").get_data()
    assert templates.shape[0] == len(sorting.unit_ids)
    assert np.abs(templates).max() > 0

    phy = tmp_path / "phy"
    sexp.export_to_phy(analyzer, phy, compute_pc_features=False, compute_amplitudes=True, copy_binary=True,
                       verbose=False, n_jobs=1, progress_bar=False)
    for name in ["params.py", "spike_times.npy", "spike_templates.npy", "spike_clusters.npy", "templates.npy",
                 "amplitudes.npy", "channel_positions.npy", "channel_map.npy", "cluster_group.tsv", "recording.dat"]:
        assert (phy / name).is_file(), name
    assert (phy / "recording.dat").stat().st_size == recording.get_num_samples() * recording.get_num_channels() * \
        np.dtype(recording.get_dtype()).itemsize

    back = se.read_phy(phy)
    assert len(back.unit_ids) == len(sorting.unit_ids)
    assert back.to_spike_vector().size == sorting.to_spike_vector().size
    # Phy's cluster ids map back to the Sorting's unit ids (cluster_si_unit_ids.tsv), spike for spike.
    import pandas as pd

    table = pd.read_csv(phy / "cluster_si_unit_ids.tsv", sep="\t")
    si_ids = dict(zip(table["cluster_id"], table["si_unit_id"]))
    for cluster_id in back.unit_ids:
        unit_id = sorting.unit_ids[[str(u) for u in sorting.unit_ids].index(str(si_ids[cluster_id]))]
        np.testing.assert_array_equal(back.get_unit_spike_train(cluster_id), sorting.get_unit_spike_train(unit_id))
