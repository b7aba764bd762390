"""Single-task and multi-task classifiers over single-channel waveforms.

Every model is a trunk (FFN, 1-D CNN or LSTM) that maps a waveform to an embedding,
followed by one linear head per file. A single-task model is the same thing with one
head, so both kinds train and score through the same code; a multi-task model shares
its trunk between all files, and each file keeps its own head because a "track" label
means a different fibre in every file.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ParameterError
from ...learning.models import SnippetEncoder

TRUNKS = ("ffn", "cnn", "lstm")
MODEL_NAMES = TRUNKS + tuple(f"mtl-{trunk}" for trunk in TRUNKS)
MULTITASK_PREFIX = "mtl-"


def is_multitask(model_name: str) -> bool:
    return model_name.startswith(MULTITASK_PREFIX)


def trunk_of(model_name: str) -> str:
    if model_name not in MODEL_NAMES:
        raise ParameterError(f"Unknown model {model_name!r}: use one of {', '.join(MODEL_NAMES)}.")
    return model_name.removeprefix(MULTITASK_PREFIX)


class FFNTrunk(nn.Module):
    def __init__(self, n_samples: int, hidden: int, dropout: float):
        super().__init__()
        self.embedding_dim = hidden
        self.layers = nn.Sequential(
            nn.Linear(n_samples, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.layers(waveforms)


class CNNTrunk(nn.Module):
    """The package's snippet CNN on one channel, with a ReLU on its embedding as in ``SnippetClassifier``."""

    def __init__(self, n_samples: int, hidden: int, width: int, dropout: float):
        super().__init__()
        self.embedding_dim = hidden
        self.encoder = SnippetEncoder(1, n_samples, embedding_dim=hidden, width=width, dropout=dropout)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.encoder(waveforms))


class LSTMTrunk(nn.Module):
    """An LSTM reading the waveform sample by sample; the embedding is its last hidden state."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.embedding_dim = hidden
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        _, (last_hidden, _) = self.lstm(waveforms.unsqueeze(-1))
        return self.dropout(last_hidden[-1])


class MultiHeadClassifier(nn.Module):
    """A shared trunk and one linear head per task (file)."""

    def __init__(self, trunk: nn.Module, classes_per_task: dict[str, int]):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict({task: nn.Linear(trunk.embedding_dim, n) for task, n in classes_per_task.items()})

    @property
    def tasks(self) -> list[str]:
        return list(self.heads.keys())

    def forward(self, waveforms: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](self.trunk(waveforms))

    def forward_tasks(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits per task; the trunk runs once over all tasks' rows (shared batch statistics too)."""
        tasks = list(inputs)
        embeddings = self.trunk(torch.cat([inputs[task] for task in tasks]))
        sizes = [inputs[task].shape[0] for task in tasks]
        return {task: self.heads[task](part) for task, part in zip(tasks, torch.split(embeddings, sizes))}


def build_model(model_name: str, n_samples: int, classes_per_task: dict[str, int], params: dict) -> MultiHeadClassifier:
    """The network for ``model_name`` with hyper-parameters ``params`` (see ``search.suggest_params``)."""
    trunk_name = trunk_of(model_name)
    if trunk_name == "ffn":
        trunk = FFNTrunk(n_samples, params["hidden"], params["dropout"])
    elif trunk_name == "cnn":
        trunk = CNNTrunk(n_samples, params["hidden"], params["width"], params["dropout"])
    else:
        trunk = LSTMTrunk(params["hidden"], params["dropout"])
    return MultiHeadClassifier(trunk, classes_per_task)
