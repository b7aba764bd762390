"""Helpers shared by test files (on the tests' path through pyproject's ``pythonpath``)."""


def tree_snapshot(folder):
    """Every file under ``folder`` with its bytes: equal snapshots mean nothing was changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CHROMIUM = "/usr/bin/chromium"


def page_images(html_text: str) -> list[str]:
    """The ``src`` of every ``<img>`` of a page."""
    import re

    return re.findall(r'<img src="([^"]+)"', html_text)


def chromium(*args: str, timeout: float = 90, budget_ms: int = 5000):
    """Headless chromium with a throw-away profile (the test is skipped where chromium is missing)."""
    import os
    import subprocess
    import tempfile

    import pytest

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium not installed: {CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def snippet_store(tmp_path, n_per_unit=150, seed=0):
    """Three synthetic 'units' with distinct shapes on 4 channels, saved as a snippet store."""
    import numpy as np

    from spikeinterface_deepsort.stages.snippets import SnippetStore

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 40)
    shapes = [-np.exp(-((t - 0.3) / 0.05) ** 2), -np.exp(-((t - 0.3) / 0.12) ** 2), np.sin(2 * np.pi * 3 * t) * np.exp(-t * 3)]
    gains = [np.array([1.0, 0.5, 0.2, 0.1]), np.array([1.0, 0.9, 0.6, 0.3]), np.array([1.0, 0.2, 0.6, 0.1])]
    snippets, labels = [], []
    for unit, (shape, gain) in enumerate(zip(shapes, gains)):
        x = 10 * shape[None, :, None] * gain[None, None, :] + rng.normal(0, 0.5, size=(n_per_unit, 40, 4))
        snippets.append(x)
        labels += [unit] * n_per_unit
    snippets = np.concatenate(snippets).astype(np.float32)
    folder = tmp_path / "snippets"
    folder.mkdir()
    np.save(folder / "snippets.npy", snippets)
    locations = np.zeros(len(snippets), dtype=[("x", "float64"), ("y", "float64")])
    np.save(folder / "locations.npy", locations)
    np.save(folder / "neighbours.npy", np.arange(4)[None, :].repeat(4, 0))
    (folder / "snippets.json").write_text('{"nbefore": 12, "nafter": 28, "n_peaks": %d, "scale": 10.0}' % len(snippets))
    return SnippetStore.load(folder), np.array(labels)
