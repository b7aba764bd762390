"""The sorting report: ``make_report(OUT)`` writes OUT/report/index.html with its figures and tables."""

from .build import make_report

__all__ = ["make_report"]
