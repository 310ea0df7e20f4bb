"""Result rows in; tables, pages and the regression gate out.

Reads only result rows (and the pure-Python metric specs in :mod:`metrics.spec`); never imports torch,
metric backends, baselines or the benchmark harness.
"""

from .aggregate import Leaderboard, build_leaderboard
from .check import CheckReport, Tolerance, ToleranceError, Tolerances, compare_rows, make_tolerances
from .check import read_results as read_rows
from .frame import load_results, rows_frame
from .outputs import OUTPUT_FILES, write_leaderboard
from .rows import ResultRow, RowError
from .scale import SCALES, parse_scale_options
from .stats import Interval, bootstrap_mean_ci

__all__ = [
    "OUTPUT_FILES",
    "SCALES",
    "CheckReport",
    "Interval",
    "Leaderboard",
    "ResultRow",
    "RowError",
    "Tolerance",
    "ToleranceError",
    "Tolerances",
    "bootstrap_mean_ci",
    "build_leaderboard",
    "compare_rows",
    "load_results",
    "make_tolerances",
    "parse_scale_options",
    "read_rows",
    "rows_frame",
    "write_leaderboard",
]
