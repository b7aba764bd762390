"""Helpers shared by test files (on the tests' path through pyproject's ``pythonpath``)."""


def tree_snapshot(folder):
    """Every file under ``folder`` with its bytes: equal snapshots mean nothing was changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
