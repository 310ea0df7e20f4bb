"""A PNG of a leaderboard page taken by headless Chromium (the docs' screenshot; the browser tests).

Command line::

    python -m leaderboard.screenshot PAGE.html OUT.png [--size 1280x1600]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first headless-capable Chromium on ``PATH``, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_flags(profile: Path) -> list[str]:
    """Flags for a headless run on a machine with no network and as root, with a fresh profile."""
    return [
        "--headless",
        "--no-sandbox",  # as root Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",  # no connection attempts on a closed network
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


def screenshot(
    page: Path, out: Path, *, width: int = 1280, height: int = 1600, browser: str | None = None
) -> Path:
    """Render ``page`` (a local HTML file) at ``width``×``height`` into the PNG ``out``.

    Raises:
        FileNotFoundError: no page, or no Chromium on PATH.
        RuntimeError: Chromium failed (its last output lines).
    """
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such page; build it with `overfit-bench leaderboard`")
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium on PATH; install it (Debian: apt-get install -y chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            *chromium_flags(Path(profile)),
            "--virtual-time-budget=3000",  # let the page's script sort and draw first
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard.screenshot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("page", type=Path, help="the leaderboard's index.html")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument(
        "--size", default="1280x1600", help="window WIDTHxHEIGHT in pixels (default 1280x1600)"
    )
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1280x1600")
    try:
        screenshot(args.page, args.out, width=width, height=height)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
