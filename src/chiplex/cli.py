"""`chiplex`: the command-line driver. Each subcommand lives in its own module of `chiplex.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from typing import TextIO

from chiplex import __version__
from chiplex.errors import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_UNDECIDED,
    ChiplexError,
    ChiplexTimeout,
    ChiplexWarning,
)


def build_parser() -> argparse.ArgumentParser:
    import chiplex.commands as commands

    parser = argparse.ArgumentParser(
        prog="chiplex",
        description="Partition ML tensor programs across the chiplets of a multi-chip module.",
        epilog=EXIT_CODES_HELP,
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
    if not (sys.argv[1:] if argv is None else argv):
        # `chiplex` alone: the commands, not argparse's "arguments are required: COMMAND".
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = WarningPrinter()
            return int(args.handler(args) or 0)
    except ChiplexTimeout as err:
        print(f"chiplex: undecided: {err}", file=sys.stderr)
        return EXIT_UNDECIDED
    except ChiplexError as err:
        print(f"chiplex: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`chiplex ... | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("chiplex: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        # The file system said no (a name too long, no permission, a full disk): the user's to fix.
        print(f"chiplex: error: {os_error_message(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a bug: one clear line, the traceback on request
        return report_internal_error("chiplex", err)


class WarningPrinter:
    """A `warnings.showwarning`: chiplex's own warnings as `PROG: warning: ...` lines, each once
    per command (a rule's warning recurs for every attempt of a compile), any other in Python's form."""

    def __init__(self, prog: str = "chiplex") -> None:
        self.prog = prog
        self.shown: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        stream = file or sys.stderr
        if not issubclass(category, ChiplexWarning):
            stream.write(warnings.formatwarning(message, category, filename, lineno, line))
        elif str(message) not in self.shown:
            self.shown.add(str(message))
            print(f"{self.prog}: warning: {message}", file=stream)


def os_error_message(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename is not None else ""
    return f"{where}{err.strerror or err}"


def report_internal_error(prog: str, err: BaseException) -> int:
    """A bug, not bad input: say so in one line (with where it happened); CHIPLEX_TRACEBACK=1 shows all."""
    import os
    import traceback

    if os.environ.get("CHIPLEX_TRACEBACK"):
        traceback.print_exception(err)
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" at {frame.filename}:{frame.lineno}" if frame else ""
    print(
        f"{prog}: internal error: {type(err).__name__}: {err}{where}\n"
        f"{prog}: this is a bug in chiplex; please report it with the command and input "
        "(CHIPLEX_TRACEBACK=1 prints the traceback)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
