"""Neural networks over spike snippets.

``SnippetEncoder`` is the CNN that DeepCluster trains in the sorter and that phase 1
trains on a reference sorting: a snippet of ``n_samples`` time points on
``in_channels`` channels (the peak's channel first, then its neighbours by distance)
is mapped to a short embedding. ``SnippetClassifier`` puts a linear head on it; the
head is replaced by a fresh one whenever the label set changes (a new DeepCluster
round), because cluster ids from one round mean nothing in the next.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int, kernel_size: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return nn.Sequential(*layers)


class SnippetEncoder(nn.Module):
    """1-D CNN over time with channels as input planes.

    Time convolutions capture the waveform's shape; the first layer mixes channels, so
    the spatial footprint on the neighbourhood is learned too. Pooling is mild (x4 in
    all) because a spike lasts only ~1 ms and its timing relative to the peak matters.
    """

    def __init__(self, in_channels: int, n_samples: int, embedding_dim: int = 16, width: int = 16, dropout: float = 0.1):
        super().__init__()
        if in_channels < 1 or n_samples < 4:
            raise ValueError(f"SnippetEncoder needs >= 1 channel and >= 4 samples, got {in_channels} x {n_samples}")
        self.in_channels = in_channels
        self.n_samples = n_samples
        self.embedding_dim = embedding_dim
        self.features = nn.Sequential(
            _conv_block(in_channels, 2 * width, 5, pool=True),
            _conv_block(2 * width, 2 * width, 5, pool=True),
            _conv_block(2 * width, 2 * width, 3, pool=False),
        )
        flat = 2 * width * (n_samples // 4)
        self.project = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(64, embedding_dim),
        )

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        if snippets.dim() == 2:  # single-channel waveforms (batch, time)
            snippets = snippets.unsqueeze(1)
        return self.project(self.features(snippets))


class SnippetClassifier(nn.Module):
    """An encoder followed by a linear classification head."""

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embedding_dim, n_classes)

    def reset_head(self, n_classes: int) -> None:
        """Replace the head with a freshly initialised one for a new label set."""
        device = next(self.encoder.parameters()).device
        self.head = nn.Linear(self.encoder.embedding_dim, n_classes).to(device)

    def embed(self, snippets: torch.Tensor) -> torch.Tensor:
        return self.encoder(snippets)

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(snippets)))


class PCAEncoder(nn.Module):
    """The principal components of the raw snippets as a fixed linear encoder: what the learned
    embedding replaces (the sorter's ``features="pca"``), used by the same downstream stages."""

    def __init__(self, mean: torch.Tensor, components: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("components", torch.as_tensor(components, dtype=torch.float32))
        self.embedding_dim = int(self.components.shape[0])

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        return (snippets.flatten(1) - self.mean) @ self.components.T

    def embed(self, snippets: torch.Tensor) -> torch.Tensor:
        return self.forward(snippets)
