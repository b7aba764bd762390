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
