"""The report's own figures of the training: DeepCluster's rounds and the learned embedding."""

import numpy as np

from spikeinterface_deepsort.tools.report.training_figures import OUTLIER_COLOR, embedding_plot, training_figure
from spikeinterface_deepsort.tools.report.unit_figures import unit_colors


def test_embedding_and_training_figures_have_content(report_folder):
    import matplotlib.image as mpimg

    for name in ["deepcluster_history.png", "embedding.png"]:
        image = mpimg.imread(report_folder / name)
        assert image.shape[0] > 200 and image.shape[1] > 300
        # Not a blank canvas: many distinct colours (points of several units, curves, axes).
        colours = {tuple(px) for px in (image[::4, ::4, :3] * 255).astype(int).reshape(-1, 3)}
        assert len(colours) > 20, name


def test_training_figure_one_round_with_per_step_loss(sorter_folder):
    import matplotlib

    matplotlib.use("Agg")
    from spikeinterface_deepsort.learning.training import load_checkpoint

    pseudo_labels = load_checkpoint(sorter_folder / "sorter_output" / "deepcluster" / "deepcluster_checkpoint.pt")["labels"]
    history = [{"round": 1, "n_clusters": int(pseudo_labels.max()) + 1, "train_loss": 1.2, "nmi": None}]
    steps = [{"round": 1, "step": i + 1, "loss": 2.3 * np.exp(-i / 10)} for i in range(40)]
    figure = training_figure(history, steps, pseudo_labels, 0.95)
    loss, sizes = figure.axes  # no NMI panel with one round
    assert loss.get_xlabel() == "optimiser step" and "pseudo-labels" in loss.get_ylabel()
    assert len(loss.lines[0].get_xdata()) == 40
    assert sorted((p.get_height() for p in sizes.patches), reverse=True) == sorted(np.bincount(pseudo_labels),
                                                                                  reverse=True)
    assert sizes.get_ylabel() == "training peaks"


def test_embedding_tells_units_from_outliers():
    import matplotlib
    from matplotlib.colors import to_hex

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    labels = np.repeat([-1, 0, 1, 2, 7], 200)  # 7: a unit dropped before matching
    projected = rng.normal(size=(len(labels), 2)) + labels[:, None]
    colors = unit_colors([0, 1, 2])
    figure = embedding_plot(projected, labels, colors)
    outliers, dropped, *units = figure.axes[0].collections
    assert outliers.get_zorder() < min(u.get_zorder() for u in units)
    assert outliers.get_sizes()[0] < min(u.get_sizes()[0] for u in units)
    assert to_hex(outliers.get_facecolor()[0][:3]) == OUTLIER_COLOR
    assert [t.get_text() for t in figure.axes[0].texts] == ["0", "1", "2"]  # each unit's id at its centre
