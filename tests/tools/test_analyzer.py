"""build_analyzer, the one SortingAnalyzer of a sort, and the one unit position and depth."""

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.tools.analyzer import UNIT_LOCATION_METHOD, build_analyzer, unit_depths, unit_locations

BASE = ["random_spikes", "templates", "noise_levels", "spike_amplitudes", "unit_locations"]


@pytest.fixture(scope="module")
def case():
    return sic.generate_ground_truth_recording(durations=[3.0], sampling_frequency=30000.0, num_channels=8,
                                               num_units=3, seed=4)


def test_the_extensions_asked_are_computed_on_the_filtered_recording(export_case, export_analyzer):
    recording, sorting = export_case
    for name in BASE + ["spike_locations"]:
        assert export_analyzer.has_extension(name), name
    assert not export_analyzer.has_extension("waveforms")  # not asked
    assert export_analyzer.sparsity is not None and export_analyzer.recording.is_filtered()
    assert export_analyzer.get_extension("random_spikes").params["max_spikes_per_unit"] == 300
    assert export_analyzer.get_extension("templates").params["operators"] == ["average", "std"]
    assert export_analyzer.get_extension("unit_locations").params["method"] == UNIT_LOCATION_METHOD
    assert len(export_analyzer.get_extension("spike_amplitudes").get_data()) == sorting.to_spike_vector().size


def test_waveforms_without_spike_locations_saved_in_a_folder(case, tmp_path):
    recording, sorting = case
    analyzer = build_analyzer(sorting, recording, folder=tmp_path / "analyzer", waveforms=True, spike_locations=False,
                              max_spikes_per_unit=50, template_operators=("average",))
    assert analyzer.has_extension("waveforms") and analyzer.has_extension("templates")  # waveforms kept templates
    assert not analyzer.has_extension("spike_locations")
    assert analyzer.get_extension("templates").params["operators"] == ["average"]
    reloaded = sic.load_sorting_analyzer(tmp_path / "analyzer")
    for name in BASE + ["waveforms"]:
        assert reloaded.has_extension(name), name
    np.testing.assert_allclose(unit_locations(reloaded), unit_locations(analyzer))


def test_unit_depth_is_the_y_of_the_unit_location(export_case, export_analyzer):
    recording, _ = export_case
    locations = unit_locations(export_analyzer)
    assert locations.shape[0] == len(export_analyzer.unit_ids) and locations.dtype == np.float64
    np.testing.assert_array_equal(unit_depths(export_analyzer), locations[:, 1])
    y = recording.get_channel_locations()[:, 1]
    assert np.all((unit_depths(export_analyzer) >= y.min()) & (unit_depths(export_analyzer) <= y.max()))


def test_locations_of_another_method_are_brought_to_the_shared_one(case):
    recording, sorting = case
    analyzer = build_analyzer(sorting, recording, spike_locations=False)
    shared = unit_depths(analyzer)
    analyzer.compute("unit_locations", method="monopolar_triangulation")
    np.testing.assert_allclose(unit_depths(analyzer), shared)
    assert analyzer.get_extension("unit_locations").params["method"] == UNIT_LOCATION_METHOD
