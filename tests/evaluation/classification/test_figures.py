"""Phase 1's figures: written as PNGs (no display), their size following the number of classes or units."""

import numpy as np
import pandas as pd
from PIL import Image

from spikeinterface_deepsort.evaluation.classification.figures import (plot_agreement_matrix, plot_confusion_matrix,
                                                                       plot_training_curves)


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        return image.size


def test_training_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 1 / (e + 1), "val_loss": 1.2 / e,
                "val_accuracy": 1 - 1.2 / (e + 2)} for e in range(1, 6)]
    plot_training_curves(history, tmp_path / "curves.png", best_epoch=3)
    assert _png(tmp_path / "curves.png") == (1200, 480)  # 10 x 4 inches at 120 dpi
    plot_training_curves([{k: v for k, v in h.items() if not k.startswith("val")} for h in history],
                         tmp_path / "train_only.png")  # no validation split: drawn all the same
    assert _png(tmp_path / "train_only.png") == (1200, 480)


def test_confusion_matrix_grows_with_the_classes(tmp_path):
    sizes = []
    for n in (3, 25):  # beyond 20 classes the cells are not annotated, but drawn
        names = [f"c{i}" for i in range(n)]
        matrix = pd.DataFrame(np.eye(n), index=names, columns=names)
        plot_confusion_matrix(matrix, tmp_path / f"confusion_{n}.png")
        sizes.append(_png(tmp_path / f"confusion_{n}.png"))
    assert sizes[1][0] > 3 * sizes[0][0] and sizes[1][1] > 3 * sizes[0][1]


def test_agreement_matrix_of_unequal_sortings(tmp_path):
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.uniform(0, 0.3, size=(4, 6)), index=[f"r{i}" for i in range(4)],
                          columns=[f"s{i}" for i in range(6)])
    for i in range(4):
        scores.iloc[i, 5 - i] = 0.9
    plot_agreement_matrix(scores, tmp_path / "agreement.png", "kilosort", "deepspikesort")
    width, height = _png(tmp_path / "agreement.png")
    assert width > height  # more sorting units (columns) than reference units (rows)
    big = pd.DataFrame(rng.uniform(0, 1, size=(60, 80)))
    plot_agreement_matrix(big, tmp_path / "big.png", "a", "b")
    assert max(_png(tmp_path / "big.png")) <= 20 * 120  # capped at 20 inches
