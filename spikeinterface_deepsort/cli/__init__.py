"""The ``deepspikesort`` command line: ``main`` builds the parser from the sub-command modules."""

from .main import main

__all__ = ["main"]
