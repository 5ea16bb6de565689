"""Turnaround and read time for the dashboard: the statistics live in monitors.turnaround (shared
with the committee pack, so the page and the pack print the same medians and CIs); this module
keeps the names the dashboard's data layer imports."""

from __future__ import annotations

from monitors.turnaround import (
    MIN_N,
    MedianCI,
    MedianDifference,
    ModelTimes,
    annual_volume,
    compare_medians,
    median_ci,
    median_difference,
    model_times,
    read_time_coverage,
    times_table,
)

__all__ = [
    "MIN_N",
    "MedianCI",
    "MedianDifference",
    "ModelTimes",
    "annual_volume",
    "compare_medians",
    "median_ci",
    "median_difference",
    "model_times",
    "read_time_coverage",
    "times_table",
]
