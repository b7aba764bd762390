"""The GPU path: run where CUDA exists, skipped cleanly elsewhere; OOM handling tested everywhere."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.settings import resolve_device
from spikeinterface_deepsort.learning.training import StepResult, fit

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_auto_picks_what_exists():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_with_the_fix():
    with pytest.raises(ParameterError, match="device='cpu'"):
        resolve_device("cuda")


def test_out_of_memory_halves_the_batch_and_goes_on(caplog):
    """A loss step that runs out of memory above 16 items: training splits each batch and continues."""
    torch.manual_seed(0)
    x, y = torch.randn(128, 4), torch.randint(0, 2, (128,))
    model = nn.Linear(4, 2)
    sizes = []

    def limited_step(model, batch, device):
        inputs, labels = batch
        if len(inputs) > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        sizes.append(len(inputs))
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, labels)
        return StepResult(loss, int((logits.argmax(1) == labels).sum()), len(labels))

    with caplog.at_level("WARNING"):
        result = fit(model, DataLoader(TensorDataset(x, y), batch_size=64), epochs=2, loss_step=limited_step,
                     progress=False)
    assert max(sizes) <= 16 and sum(sizes) == 2 * 128
    assert len(result.history) == 2
    assert "halving the batch" in caplog.text


@needs_cuda
def test_sorter_runs_on_the_gpu(tetrode_case, tmp_path, fast_params):
    import spikeinterface.sorters as ss

    recording, _ = tetrode_case
    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "gpu", device="cuda", **fast_params)
    assert len(sorting.unit_ids) > 0
    assert "on cuda" in (tmp_path / "gpu" / "sorter_output" / "deepspikesort.log").read_text()
