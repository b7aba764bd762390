"""The package's version (read by pyproject.toml and written into our folders' markers)."""

__version__ = "0.1.0"
