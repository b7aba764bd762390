"""The trunks and the shared-trunk, one-head-per-file classifier."""

import pytest
import torch

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.evaluation.multitask.loss import MultiTaskLoss
from spikeinterface_deepsort.evaluation.multitask.networks import MODEL_NAMES, build_model, is_multitask, trunk_of

PARAMS = {"hidden": 16, "width": 8, "dropout": 0.1}
TASKS = {"A2": 2, "A4": 3, "A12": 6}


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_shapes(model_name):
    torch.manual_seed(0)
    model = build_model(model_name, 30, TASKS, PARAMS)
    x = torch.randn(7, 30)
    for task, n_classes in TASKS.items():
        assert model(x, task).shape == (7, n_classes)
    logits = model.forward_tasks({"A2": x, "A12": torch.randn(4, 30)})
    assert logits["A2"].shape == (7, 2) and logits["A12"].shape == (4, 6)


def test_names():
    assert is_multitask("mtl-cnn") and not is_multitask("cnn")
    assert trunk_of("mtl-lstm") == "lstm"
    with pytest.raises(ParameterError, match="Unknown model"):
        trunk_of("svm")


@pytest.mark.parametrize("model_name", ["mtl-ffn", "mtl-cnn", "mtl-lstm"])
def test_one_multitask_step_updates_every_head_and_the_trunk(model_name):
    torch.manual_seed(0)
    model = build_model(model_name, 30, TASKS, PARAMS)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = {task: (torch.randn(8, 30), torch.randint(0, n, (8,))) for task, n in TASKS.items()}
    optimizer.zero_grad()
    MultiTaskLoss()(model, batch, torch.device("cpu")).loss.backward()
    optimizer.step()
    for task in TASKS:
        assert not torch.equal(before[f"heads.{task}.weight"], model.heads[task].weight), task
    changed_trunk = [n for n, p in model.named_parameters() if n.startswith("trunk") and not torch.equal(before[n], p)]
    assert len(changed_trunk) == sum(1 for n, _ in model.named_parameters() if n.startswith("trunk"))
