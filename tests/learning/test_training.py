import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikeinterface_deepsort.learning.models import SnippetClassifier, SnippetEncoder
from spikeinterface_deepsort.learning.training import EpochShuffleSampler, evaluate, fit, load_checkpoint, predict, save_atomic


def _blobs(n=400, seed=0, spread=0.5):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    x = centres[y] + spread * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def _loader(dataset, seed=0):
    return DataLoader(dataset, batch_size=32, sampler=EpochShuffleSampler(len(dataset), seed))


def test_fit_learns_a_separable_problem():
    data = _blobs()
    model = _model()
    result = fit(model, _loader(data), epochs=5, learning_rate=1e-2, progress=False)
    assert len(result.history) == 5
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(model, DataLoader(_blobs(seed=1), batch_size=64), torch.device("cpu"))["accuracy"] > 0.95


def test_early_stopping_stops_and_restores_the_best_epoch():
    # Overlapping classes: validation loss reaches a floor, then over-fitting raises it.
    train, val = _blobs(n=200, seed=0, spread=3.0), _blobs(n=200, seed=1, spread=3.0)
    model = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 3))
    val_loader = DataLoader(val, batch_size=50)
    result = fit(model, _loader(train), epochs=300, learning_rate=1e-2, progress=False,
                 val_loader=val_loader, patience=5)
    assert result.stopped_early and len(result.history) < 300
    best = min(result.history, key=lambda r: r["val_loss"])
    assert best["epoch"] == result.best_epoch
    restored = evaluate(model, val_loader, torch.device("cpu"))["loss"]
    assert restored == pytest.approx(best["val_loss"], rel=1e-5)


def test_resume_from_checkpoint_gives_the_same_weights(tmp_path):
    data = _blobs()
    uninterrupted = _model()
    fit(uninterrupted, _loader(data), epochs=4, progress=False)

    interrupted = _model()
    fit(interrupted, _loader(data), epochs=2, progress=False, checkpoint_path=tmp_path / "ck.pt")
    resumed = _model(seed=123)  # different init: everything must come from the checkpoint
    result = fit(resumed, _loader(data), epochs=4, progress=False, checkpoint_path=tmp_path / "ck.pt", resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_corrupted_checkpoint_is_detected_not_loaded(tmp_path):
    path = tmp_path / "ck.pt"
    path.write_bytes(b"not a checkpoint")
    assert load_checkpoint(path) is None
    save_atomic({"model": {}, "epoch": 0}, path)
    assert load_checkpoint(path)["epoch"] == 0
    assert not (tmp_path / "ck.pt.tmp").exists()


def test_zero_epochs_is_refused():
    with pytest.raises(ValueError, match="epochs"):
        fit(_model(), _loader(_blobs()), epochs=0)


def test_predict_concatenates_in_order():
    x = torch.arange(10, dtype=torch.float32).reshape(10, 1)
    out = predict(lambda t: t * 2, DataLoader(TensorDataset(x), batch_size=3))
    assert torch.equal(out, x * 2)


def test_predict_with_a_bound_method_runs_the_module_in_eval_mode():
    # DeepCluster embeds with model.embed: dropout must be off and batch-norm statistics frozen,
    # or a snippet's embedding depends on the call and on the other snippets of its batch.
    torch.manual_seed(0)
    model = SnippetClassifier(SnippetEncoder(2, 16, embedding_dim=4), n_classes=3)
    model.train()
    running_mean = model.encoder.features[0][1].running_mean.clone()
    x = torch.randn(12, 2, 16)
    first = predict(model.embed, DataLoader(TensorDataset(x), batch_size=5))
    second = predict(model.embed, DataLoader(TensorDataset(x), batch_size=12))
    assert torch.allclose(first, second, atol=1e-6)
    assert torch.equal(model.encoder.features[0][1].running_mean, running_mean)
    assert not model.training
