"""The report's figures of the units, drawn from a SortingAnalyzer's extensions.

Every figure has labelled axes with units, a legend outside the data, and is saved at
``DPI`` (150); the page shows it at its natural size (96 CSS pixels per inch), so 10 pt
text reads as 10 pt at 100 % zoom. Each unit keeps one colour in every figure, and
per-unit panels are titled with the unit's label (good, MUA, noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DPI = 150
UNITS_PER_FIGURE = 20
FONT = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
        "legend.fontsize": 9}
LABEL_COLORS = {"good": "#1a7f37", "mua": "#b35900", "noise": "#b00020", "non_soma": "#6f42c1"}


@dataclass
class Figure:
    filename: str
    title: str
    caption: str
    width_px: int = 0  # the PNG's width, so the page can show it at its natural size


def save(figure, path: Path) -> int:
    """Save at ``DPI`` and return the PNG's width in pixels."""
    import matplotlib.pyplot as plt
    from matplotlib.image import imread

    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return int(imread(path).shape[1])


def unit_colors(unit_ids) -> dict:
    """One colour per unit, the same in every figure: tab10 without its grey (grey is the outliers' colour
    in the embedding) up to 9 units, then saturated hues a golden ratio apart, at two lightnesses
    (tab20's pale half is too close to grey)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import hsv_to_rgb

    unit_ids = list(unit_ids)
    if len(unit_ids) <= 9:
        palette = [plt.get_cmap("tab10")(i) for i in range(10) if i != 7]
    else:
        palette = [tuple(hsv_to_rgb(((i * 0.618034) % 1.0, 0.85, 0.9 if i % 2 else 0.6))) + (1.0,)
                   for i in range(len(unit_ids))]
    return {unit_id: palette[i] for i, unit_id in enumerate(unit_ids)}


def pages(unit_ids, size: int = UNITS_PER_FIGURE) -> list:
    return [unit_ids[start:start + size] for start in range(0, len(unit_ids), size)]


def _grid(n_units: int, width: float, height: float, ncols: int = 5):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n_units)
    nrows = int(np.ceil(n_units / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat[n_units:]:
        ax.set_visible(False)
    return fig, axes


def _unit_title(ax, unit_id, labels: dict, color) -> None:
    label = labels.get(unit_id)
    ax.set_title(f"unit {unit_id}" + (f" · {label.upper() if label == 'mua' else label}" if label else ""),
                 color=LABEL_COLORS.get(label, "black"))
    ax.plot([0.0, 1.0], [1.0, 1.0], transform=ax.transAxes, color=color, lw=4, clip_on=False)


def _nice(value: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``value``, for scale bars."""
    if value <= 0:
        return 1.0
    exponent = np.floor(np.log10(value))
    for step in (5, 2, 1):
        if step * 10 ** exponent <= value:
            return float(step * 10 ** exponent)
    return float(10 ** exponent)


def _pitch(values: np.ndarray, default: float) -> float:
    steps = np.diff(np.unique(np.round(values, 3)))
    return float(steps.min()) if len(steps) else default


def template_figure(analyzer, units, colors: dict, labels: dict):
    """Each unit's mean waveform ± 1 SD on its channels, drawn where the channels sit on the probe, with
    a 1 ms and a µV scale bar (the µV bar differs between units: each unit is scaled to its own size)."""
    import matplotlib.pyplot as plt

    ext = analyzer.get_extension("templates")
    mean = ext.get_templates(unit_ids=units, operator="average")
    spread = ext.get_templates(unit_ids=units, operator="std")
    times_ms = (np.arange(mean.shape[1]) - ext.nbefore) / analyzer.sampling_frequency * 1000.0
    locations = analyzer.get_channel_locations()
    dy = _pitch(locations[:, 1], 20.0)
    dx = _pitch(locations[:, 0], dy)
    um_per_ms = 0.8 * dx / np.ptp(times_ms)  # a waveform spans 80 % of the gap between columns
    with plt.rc_context(FONT):
        fig, axes = _grid(len(units), 2.8, 3.4)
        for i, (ax, unit_id) in enumerate(zip(axes.flat, units)):
            channels = (analyzer.sparsity.unit_id_to_channel_indices[unit_id] if analyzer.sparsity is not None
                        else np.arange(len(locations)))
            wave, band = mean[i][:, channels], spread[i][:, channels]
            height = float(np.ptp(wave, axis=0).max()) or 1.0
            um_per_uv = 0.9 * dy / height  # the largest waveform spans 90 % of the vertical pitch
            for c, (x0, y0) in enumerate(locations[channels]):
                x = x0 + (times_ms - times_ms[0]) * um_per_ms - 0.4 * dx
                ax.fill_between(x, y0 + (wave[:, c] - band[:, c]) * um_per_uv, y0 + (wave[:, c] + band[:, c]) * um_per_uv,
                                color=colors[unit_id], alpha=0.25, lw=0)
                ax.plot(x, y0 + wave[:, c] * um_per_uv, color=colors[unit_id], lw=1.2)
            bar_uv = _nice(height / 2)
            bx, by = locations[channels, 0].min() - 0.45 * dx, locations[channels, 1].min() - 0.9 * dy
            ax.plot([bx, bx + um_per_ms], [by, by], color="black", lw=1.5)
            ax.plot([bx, bx], [by, by + bar_uv * um_per_uv], color="black", lw=1.5)
            ax.text(bx + um_per_ms / 2, by - 0.08 * dy, "1 ms", ha="center", va="top", fontsize=9)
            ax.text(bx - 0.04 * dx, by + bar_uv * um_per_uv / 2, f"{bar_uv:g} µV", ha="right", va="center", fontsize=9)
            ax.margins(x=0.25, y=0.08)
            _unit_title(ax, unit_id, labels, colors[unit_id])
        for ax in axes[-1]:
            ax.set_xlabel("x on the probe (µm)")
        for ax in axes[:, 0]:
            ax.set_ylabel("y on the probe (µm)")
        fig.tight_layout()
    return fig


def amplitude_figure(analyzer, colors: dict, seed: int = 0, max_spikes: int = 5000):
    """Spike amplitude (µV) against time, and its distribution, per unit; legend outside the axes."""
    import matplotlib.pyplot as plt

    amplitudes = analyzer.get_extension("spike_amplitudes").get_data(outputs="by_unit")
    sorting, fs = analyzer.sorting, analyzer.sampling_frequency
    offsets = np.cumsum([0] + [analyzer.get_num_samples(s) for s in range(analyzer.get_num_segments())]) / fs
    rng = np.random.default_rng(seed)
    with plt.rc_context(FONT):
        fig, (ax, ax_hist) = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True, gridspec_kw={"width_ratios": [5, 1]})
        for unit_id, color in colors.items():
            times = np.concatenate([sorting.get_unit_spike_train(unit_id, segment_index=s) / fs + offsets[s]
                                    for s in range(len(offsets) - 1)])
            values = np.concatenate([amplitudes[s][unit_id] for s in range(len(offsets) - 1)])
            shown = np.sort(rng.choice(len(values), max_spikes, replace=False)) if len(values) > max_spikes else slice(None)
            ax.scatter(times[shown], values[shown], s=3, color=color, alpha=0.6, lw=0, rasterized=True, label=str(unit_id))
            if len(values):
                ax_hist.hist(values, bins=60, orientation="horizontal", histtype="step", color=color, lw=1.2)
        ax.set(xlabel="time (s)", ylabel="amplitude on the main channel (µV)", xlim=(0, offsets[-1]))
        ax_hist.set_xlabel("spikes")
        if len(colors) <= 30:
            fig.legend(*ax.get_legend_handles_labels(), title="unit", loc="center left", bbox_to_anchor=(1.0, 0.5),
                       markerscale=4, ncols=1 if len(colors) <= 15 else 2, frameon=False)
        fig.tight_layout()
    return fig


def isi_figure(analyzer, units, colors: dict, labels: dict):
    """Inter-spike-interval histograms, with the ISI-violation threshold of the quality metrics shaded."""
    counts, bins = analyzer.get_extension("isi_histograms").get_data()
    index = {u: i for i, u in enumerate(analyzer.unit_ids)}
    qm = analyzer.get_extension("quality_metrics")
    threshold = qm.params["metric_params"].get("isi_violation", {}).get("isi_threshold_ms", 1.5) if qm else 1.5
    return _histogram_grid(units, bins, lambda unit_id: counts[index[unit_id]], colors, labels,
                           xlim=(0, bins[-1]), xlabel="inter-spike interval (ms)", ylabel="intervals",
                           shaded=(0, threshold))


def autocorrelogram_figure(analyzer, units, colors: dict, labels: dict):
    ccgs, bins = analyzer.get_extension("correlograms").get_data()
    index = {u: i for i, u in enumerate(analyzer.unit_ids)}
    return _histogram_grid(units, bins, lambda unit_id: ccgs[index[unit_id], index[unit_id]], colors, labels,
                           xlim=(bins[0], bins[-1]), xlabel="lag (ms)", ylabel="spike pairs")


def _histogram_grid(units, bins, counts_of, colors: dict, labels: dict, xlim, xlabel: str, ylabel: str,
                    shaded=None):
    """One bar histogram per unit (``counts_of(unit_id)`` over ``bins``), optionally with a red band."""
    import matplotlib.pyplot as plt

    width = np.diff(bins).mean()
    with plt.rc_context(FONT):
        fig, axes = _grid(len(units), 2.6, 2.2)
        for ax, unit_id in zip(axes.flat, units):
            ax.bar(bins[:-1], counts_of(unit_id), width=width, align="edge", color=colors[unit_id])
            if shaded is not None:
                ax.axvspan(*shaded, color="#d62728", alpha=0.15, lw=0)
            ax.set_xlim(*xlim)
            _unit_title(ax, unit_id, labels, colors[unit_id])
        for ax in axes[-1]:
            ax.set_xlabel(xlabel)
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel)
        fig.tight_layout()
    return fig


def location_figure(analyzer, positions: np.ndarray, colors: dict, labels: dict):
    """Units (their ids beside them) over the probe's contacts, in µm."""
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt

    contacts = analyzer.get_channel_locations()
    everything = np.vstack([contacts[:, :2], positions[:, :2]])
    span = np.ptp(everything, axis=0)
    with plt.rc_context(FONT):
        height = float(np.clip(3 + span[1] / 60.0, 4, 12))
        width = float(np.clip(3 + span[0] / 30.0, 4.5, 9))
        fig, ax = plt.subplots(figsize=(width, height))
        ax.scatter(*contacts[:, :2].T, marker="s", s=30, color="#cccccc", label="contacts", zorder=1)
        for (x, y), (unit_id, color) in zip(positions[:, :2], colors.items()):
            label = labels.get(unit_id)
            ax.scatter(x, y, s=70, color=color, edgecolor="black", lw=0.6, zorder=3,
                       marker="o" if label in (None, "good") else "D")
            ax.annotate(str(unit_id), (x, y), xytext=(6, 4), textcoords="offset points", fontsize=9, zorder=4,
                        path_effects=[pe.withStroke(linewidth=3, foreground="white")])
        ax.set(xlabel="x on the probe (µm)", ylabel="y on the probe (µm)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.15)
        handles = [plt.Line2D([], [], marker="s", ls="", color="#cccccc", markersize=7, label="contact"),
                   plt.Line2D([], [], marker="o", ls="", mfc="white", mec="black", markersize=8, label="good unit")]
        if any(label not in (None, "good") for label in labels.values()):
            handles.append(plt.Line2D([], [], marker="D", ls="", mfc="white", mec="black", markersize=7,
                                      label="MUA / noise unit"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        fig.tight_layout()
    return fig
