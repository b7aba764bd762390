"""The report's unit figures (templates, amplitudes, ISI, autocorrelograms, locations), drawn on the
analyzer the session's sort saved with its report."""

import pytest

from spikeinterface_deepsort.tools.report.unit_figures import (
    DPI,
    amplitude_figure,
    autocorrelogram_figure,
    isi_figure,
    location_figure,
    pages,
    save,
    template_figure,
    unit_colors,
)


@pytest.fixture(scope="module")
def analyzer(report_folder):
    import spikeinterface.core as sic

    return sic.load_sorting_analyzer(report_folder / "analyzer")


def test_unit_figures_label_axes_in_physical_units(analyzer):
    import matplotlib

    matplotlib.use("Agg")
    units = list(analyzer.unit_ids)
    colors = unit_colors(units)
    labels = {u: "good" for u in units}
    templates = template_figure(analyzer, units, colors, labels)
    texts = {t.get_text() for ax in templates.axes for t in ax.texts}
    assert "1 ms" in texts and any(t.endswith(" µV") for t in texts)  # the time and voltage scale bars
    assert templates.axes[0].get_title().startswith(f"unit {units[0]} · good")
    for figure, x, y in [(templates, "(µm)", "(µm)"), (amplitude_figure(analyzer, colors), "(s)", "(µV)"),
                         (isi_figure(analyzer, units, colors, labels), "(ms)", "intervals"),
                         (autocorrelogram_figure(analyzer, units, colors, labels), "(ms)", "spike pairs"),
                         (location_figure(analyzer, analyzer.get_extension("unit_locations").get_data(), colors,
                                          labels), "(µm)", "(µm)")]:
        ax = figure.axes[0]
        assert ax.get_xlabel().endswith(x) or figure.axes[-1].get_xlabel().endswith(x), ax.get_xlabel()
        assert y in ax.get_ylabel(), ax.get_ylabel()
    # The amplitude legend sits outside the axes: it hides no spike.
    amplitudes = amplitude_figure(analyzer, colors)
    amplitudes.canvas.draw()
    legend, data = amplitudes.legends[0].get_window_extent(), amplitudes.axes[1].get_window_extent()
    assert legend.x0 >= data.x1


def test_unit_colors_are_distinct_and_never_grey():
    from matplotlib.colors import rgb_to_hsv, to_hex, to_rgb

    for n in (5, 12, 40):
        palette = list(unit_colors(range(n)).values())
        assert len({to_hex(c) for c in palette}) == n
        assert min(rgb_to_hsv(to_rgb(c))[1] for c in palette) > 0.3  # no grey: grey is the outliers'
    assert unit_colors(["a", "b"]) == {k: v for k, v in unit_colors(["a", "b", "c"]).items() if k != "c"}


def test_pages_cut_the_units_in_order_and_save_gives_the_png_width(analyzer, tmp_path):
    import matplotlib
    from PIL import Image

    matplotlib.use("Agg")
    assert pages(list(range(45)), size=20) == [list(range(20)), list(range(20, 40)), list(range(40, 45))]
    assert pages([]) == []
    units = list(analyzer.unit_ids)
    figure = isi_figure(analyzer, units, unit_colors(units), {u: "good" for u in units})
    width = save(figure, tmp_path / "isi.png")
    with Image.open(tmp_path / "isi.png") as image:
        assert image.width == width and round(image.info["dpi"][0]) == DPI
    assert not matplotlib.pyplot.fignum_exists(figure.number)  # closed once saved
