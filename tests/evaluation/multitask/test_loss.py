"""Task weights and class weights really change the gradients; the loss is the weighted sum."""

import torch
import torch.nn.functional as F

from spikeinterface_deepsort.evaluation.multitask.loss import MultiTaskLoss, balanced_class_weights
from spikeinterface_deepsort.evaluation.multitask.networks import build_model

CPU = torch.device("cpu")


def _model_and_batch():
    torch.manual_seed(0)
    model = build_model("mtl-ffn", 10, {"A": 2, "B": 3}, {"hidden": 8, "dropout": 0.0})
    batch = {"A": (torch.randn(6, 10), torch.tensor([0, 0, 0, 0, 0, 1])), "B": (torch.randn(5, 10), torch.tensor([0, 1, 2, 2, 2]))}
    return model, batch


def _gradients(model, batch, loss_step):
    model.zero_grad()
    loss_step(model, batch, CPU).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_loss_is_the_sum_of_task_cross_entropies_on_raw_logits():
    model, batch = _model_and_batch()
    result = MultiTaskLoss({"B": 2.0})(model, batch, CPU)
    expected = F.cross_entropy(model(batch["A"][0], "A"), batch["A"][1]) + 2.0 * F.cross_entropy(model(batch["B"][0], "B"), batch["B"][1])
    torch.testing.assert_close(result.loss, expected)
    assert result.n_items == 11


def test_task_weights_scale_their_heads_gradients():
    model, batch = _model_and_batch()
    plain = _gradients(model, batch, MultiTaskLoss())
    weighted = _gradients(model, batch, MultiTaskLoss({"A": 3.0, "B": 0.0}))
    torch.testing.assert_close(weighted["heads.A.weight"], 3.0 * plain["heads.A.weight"])
    assert torch.count_nonzero(weighted["heads.B.weight"]) == 0
    assert not torch.allclose(weighted["trunk.layers.0.weight"], plain["trunk.layers.0.weight"])


def test_class_weights_change_the_gradients():
    model, batch = _model_and_batch()
    weights = {"A": balanced_class_weights(batch["A"][1], 2)}
    torch.testing.assert_close(weights["A"], torch.tensor([6 / (2 * 5), 6 / (2 * 1)]))
    plain = _gradients(model, batch, MultiTaskLoss())
    weighted = _gradients(model, batch, MultiTaskLoss(class_weights=weights))
    assert not torch.allclose(plain["heads.A.weight"], weighted["heads.A.weight"])
    torch.testing.assert_close(plain["heads.B.weight"], weighted["heads.B.weight"])
