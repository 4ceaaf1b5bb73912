"""`chiplex`: the command-line driver. Each subcommand lives in its own module of `chiplex.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from chiplex import __version__
from chiplex.errors import ChiplexError


def build_parser() -> argparse.ArgumentParser:
    import chiplex.commands as commands

    parser = argparse.ArgumentParser(
        prog="chiplex",
        description="Partition ML tensor programs across the chiplets of a multi-chip module.",
    )
    parser.add_argument("--version", action="version", version=f"chiplex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Every public module in chiplex.commands defines `register(subparsers)`; `_`-prefixed ones are
    # shared helpers. Heavy imports stay inside handlers so `chiplex --help` is quick.
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"chiplex.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ChiplexError as err:
        print(f"chiplex: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`chiplex ... | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("chiplex: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
