"""``overfit-bench``: a thin shim over the package. Each command lives in ``benchmark.commands``.

Commands are imported lazily, so ``overfit-bench --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence


def _command_modules() -> list[str]:
    """Modules of ``benchmark.commands`` (one per command, each with ``register``), sorted by name."""
    import pkgutil

    import benchmark.commands as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg_version = version("overfit-bench")
    except PackageNotFoundError:
        pkg_version = "unknown"
    parser = argparse.ArgumentParser(
        prog="overfit-bench",
        description="Evaluate concept overfitting in text-to-image customization.",
    )
    parser.add_argument("--version", action="version", version=f"overfit-bench {pkg_version}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        importlib.import_module(f"benchmark.commands.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries (open_clip, diffusers) log chatty INFO lines on the root logger: keep them at WARNING.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    for pkg in ("metrics", "baselines", "benchmark", "leaderboard"):
        logging.getLogger(pkg).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
