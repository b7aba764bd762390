import torch

from spikeinterface_deepsort.learning.models import SnippetClassifier, SnippetEncoder


def test_encoder_and_classifier_shapes():
    encoder = SnippetEncoder(in_channels=8, n_samples=75, embedding_dim=12)
    model = SnippetClassifier(encoder, n_classes=5)
    x = torch.randn(3, 8, 75)
    assert model.embed(x).shape == (3, 12)
    assert model(x).shape == (3, 5)


def test_single_channel_waveforms_are_accepted():
    encoder = SnippetEncoder(in_channels=1, n_samples=30, embedding_dim=4)
    assert encoder(torch.randn(7, 30)).shape == (7, 4)


def test_reset_head_gives_a_fresh_head_of_the_new_size():
    model = SnippetClassifier(SnippetEncoder(4, 40, 8), n_classes=3)
    old = model.head
    model.reset_head(6)
    assert model.head is not old and model.head.out_features == 6
    assert model(torch.randn(2, 4, 40)).shape == (2, 6)


def test_pca_encoder_projects_the_centred_flattened_snippets():
    from spikeinterface_deepsort.learning.models import PCAEncoder

    mean, components = torch.randn(12), torch.linalg.qr(torch.randn(12, 3))[0].T  # 3 orthonormal rows
    encoder = PCAEncoder(mean, components)
    snippets = torch.randn(5, 3, 4)  # (batch, channels, time)
    assert encoder.embedding_dim == 3
    torch.testing.assert_close(encoder.embed(snippets), (snippets.reshape(5, 12) - mean) @ components.T)
