"""export_phy on a generated recording and its ground-truth sorting (the session's ``export_case``).

The clients that read these folders (Phy, phylib, bombcell) are in tests/test_export_clients.py.
"""

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.extractors as se

from spikeinterface_deepsort.errors import ParameterError, RecordingError
from spikeinterface_deepsort.tools.export import bombcell_parameters, export_phy

FS = 30000.0


@pytest.fixture(scope="module")
def float_phy(export_analyzer, tmp_path_factory):
    return export_phy(None, output_folder=tmp_path_factory.mktemp("float") / "phy", analyzer=export_analyzer)


def test_phy_kilosort_files_for_a_float_recording(export_case, export_analyzer, float_phy):
    recording, sorting = export_case
    out = float_phy
    params = (out / "params.py").read_text()
    assert "dat_path = r'recording.dat'" in params and "dtype = 'float32'" in params
    assert np.fromfile(out / "recording.dat", dtype=np.float32).size == 16 * recording.get_num_samples()
    np.testing.assert_array_equal(np.load(out / "whitening_mat_inv.npy"), np.eye(16))
    amplitudes = np.load(out / "amplitudes.npy")
    assert amplitudes.shape == (sorting.to_spike_vector().size,)
    assert np.median(amplitudes) == pytest.approx(1.0, abs=0.2) and np.mean(amplitudes > 0) > 0.99
    np.testing.assert_allclose(np.load(out / "spike_amplitudes_uV.npy"),
                               export_analyzer.get_extension("spike_amplitudes").get_data())
    assert np.load(out / "templates.npy").shape[::2] == (len(sorting.unit_ids), 16)  # dense, as Kilosort's
    assert not (out / "template_ind.npy").exists()
    back = se.read_phy(out)
    assert sorted(len(back.get_unit_spike_train(u)) for u in back.unit_ids) == sorted(
        len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids)


def test_bombcell_parameters_refuse_float_raw_data(float_phy):
    pytest.importorskip("bombcell", reason="bombcell is not installed (pip install bombcell)")
    with pytest.raises(RecordingError, match="raw_data=False"):
        bombcell_parameters(float_phy)  # bombcell would read the float32 samples as int16
    param = bombcell_parameters(float_phy, raw_data=False)
    assert param["raw_data_file"] is None and param["nChannels"] == 16 and param["ephys_sample_rate"] == FS


def test_phy_failures_leave_no_folder(export_case, export_analyzer, tmp_path):
    recording, sorting = export_case
    target = tmp_path / "phy"
    with pytest.raises(RecordingError, match="not one flat binary file"):
        export_phy(sorting, recording, target, copy_binary=False)  # a generated recording has no file
    with pytest.raises(Exception):
        export_phy(None, output_folder=target, analyzer=export_analyzer, template_mode="no-such-mode")  # fails half-way
    assert list(tmp_path.iterdir()) == []
    two = sic.generate_ground_truth_recording(durations=[1.0, 1.0], num_channels=4, num_units=2, seed=1)
    with pytest.raises(RecordingError, match="segments"):
        export_phy(two[1], two[0], target)


def test_phy_principal_components(export_case, export_analyzer, tmp_path):
    recording, sorting = export_case
    small = sorting.select_units(sorting.unit_ids[:2])
    out = export_phy(small, recording, tmp_path / "pc", compute_pc_features=True)
    features = np.load(out / "pc_features.npy")
    assert features.shape[:2] == (small.to_spike_vector().size, 5)  # 5 components per channel, every spike
    assert np.load(out / "pc_feature_ind.npy").shape == (2, features.shape[2])
    # an analyzer of the caller's without waveforms is refused before anything is written
    with pytest.raises(ParameterError, match="waveforms"):
        export_phy(None, output_folder=tmp_path / "refused", analyzer=export_analyzer, compute_pc_features=True)
    assert not (tmp_path / "refused").exists()
