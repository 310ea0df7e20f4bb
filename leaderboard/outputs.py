"""Write the leaderboard files, each atomically (temp name, then rename), readable as the user's umask
allows (not the 0600 of a temporary file)."""

from __future__ import annotations

import os
from pathlib import Path

from .aggregate import Leaderboard
from .format import DEFAULT_DIGITS
from .plots import method_colors, render_trajectories
from .render_csv import render_csv, render_paired_csv
from .render_html import render_html
from .render_md import figure_name, render_markdown

OUTPUT_FILES: tuple[str, ...] = ("LEADERBOARD.md", "leaderboard.csv", "index.html", "paired.csv")


def write_leaderboard(
    board: Leaderboard, out_dir: str | os.PathLike[str], *, digits: int = DEFAULT_DIGITS
) -> list[Path]:
    """Write ``LEADERBOARD.md``, ``leaderboard.csv``, ``index.html`` and ``paired.csv`` (every pair of
    methods, :func:`leaderboard.render_csv.render_paired_csv`) into ``out_dir`` (created), and the
    trajectory figures the Markdown page links, ``figures/<suite>-<version>-<metric>.svg``.

    Returns:
        The written paths, in :data:`OUTPUT_FILES` order (the figures are not listed).

    Raises:
        OSError: the directory cannot be created or written.
    """
    from benchmark.io import atomic_write_text  # stdlib only; importing leaderboard stays free of benchmark

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = (
        render_markdown(board, digits=digits),
        render_csv(board),
        render_html(board, digits=digits),
        render_paired_csv(board),
    )
    paths = []
    for name, text in zip(OUTPUT_FILES, texts, strict=True):
        path = out / name
        atomic_write_text(path, text)
        paths.append(path)
    for section, headline in zip(board.sections, board.headlines, strict=False):
        if headline is None:
            continue
        colors = {k.method: c for k, c in method_colors(section).items()}
        (out / "figures").mkdir(exist_ok=True)
        for metric in sorted({m for t in headline.trajectories for m in t.metrics}):
            atomic_write_text(
                out / "figures" / figure_name(headline, metric),
                render_trajectories(headline, metric, colors) + "\n",
            )
    return paths
