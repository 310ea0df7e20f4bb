"""``overfit-bench``: a thin shim over the package. Each command lives in ``benchmark.commands``.

Commands are imported lazily, so ``overfit-bench --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from benchmark.io import resolve


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
        resolve(f"benchmark.commands.{module}:register", "command")(sub)
    return parser


def _exit_code(err: BaseException) -> int | None:
    """The documented exit code of a known failure (README, "Exit codes"), or None for a bug."""
    from benchmark.context import ModelUnavailable
    from benchmark.data.errors import DataError
    from benchmark.errors import EXIT_METHOD, EXIT_UNAVAILABLE, EXIT_USAGE, EnvironmentProblem, MethodFailure

    if isinstance(err, MethodFailure):
        return EXIT_METHOD
    unavailable: tuple[type[BaseException], ...] = (ModelUnavailable, EnvironmentProblem, PermissionError)
    try:
        from metrics.backbones import BackboneUnavailable

        unavailable += (BackboneUnavailable,)
    except ImportError:  # pragma: no cover - torch missing entirely
        pass
    if isinstance(err, DataError) and not isinstance(err, ValueError):
        return EXIT_UNAVAILABLE  # files missing or not matching (a malformed manifest is a ValueError)
    if isinstance(err, unavailable):
        return EXIT_UNAVAILABLE
    if isinstance(err, (KeyError, ValueError, FileNotFoundError, NotADirectoryError, FileExistsError)):
        return EXIT_USAGE
    return None


def _message(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    if len(lines) > 1:  # a list of problems: the first line says what and how to fix; count the rest
        return f"{lines[0]} (and {len(lines) - 1} more line(s); -v lists them)"
    return lines[0] if lines else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    import os

    # outside methods given as module:Class resolve from the current folder, as `python -m` would
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
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
    except BrokenPipeError:
        # the reader went away (`overfit-bench prompts | head`): not an error of ours; silence the
        # interpreter's own flush of stdout at exit, which would raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        code = _exit_code(err)
        if code is None:
            raise
        import traceback

        if args.verbose:
            traceback.print_exc()
        log = getattr(err, "log_path", None)
        where = f" (traceback in {log}; -v prints it)" if log else ""
        print(f"overfit-bench {args.command}: error: {_message(err)}{where}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
