"""The one error type users see: a message (located when it can be), never a traceback.

Exit codes of `chiplex` and `chiplex-opt` (documented in README and every `--help` epilog):
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

EXIT_OK = 0
"""Success (for `check`: legal, or a legal placement exists)."""
EXIT_ERROR = 1
"""Bad input or a negative answer: a located error, an illegal placement, no legal placement exists."""
EXIT_USAGE = 2
"""The command line itself is wrong (unknown option, missing argument): argparse's convention."""
EXIT_UNDECIDED = 3
"""The solver or the time limit (`--time-limit`) ran out before an answer."""
EXIT_INTERNAL = 4
"""A bug in chiplex: the message says what failed; set CHIPLEX_TRACEBACK=1 to see the traceback."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""

EXIT_CODES_HELP = (
    "exit codes: 0 success; 1 bad input, illegal or infeasible; 2 bad command line; "
    "3 undecided / time limit reached; 4 internal error (a bug: please report it); 130 interrupted"
)


def user_frames(error: BaseException, *packages: ModuleType) -> list[traceback.FrameSummary]:
    """The frames of `error`'s traceback, outermost first, in the user's code: not in `packages`
    (their directories), Python's standard library or generated code (`<string>`). A file of the
    user's in a directory that happens to be called `chiplex/` still counts as theirs."""
    libraries = tuple(
        f"{Path(package.__file__).parent.resolve()}{os.sep}"
        for package in packages
        if package.__file__
    ) + (f"{Path(sysconfig.get_paths()['stdlib']).resolve()}{os.sep}",)
    return [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<")
        and not str(Path(frame.filename).resolve()).startswith(libraries)
    ]


class ChiplexError(Exception):
    """A user-facing error; the CLI prints its message and exits with code 1."""


class ChiplexWarning(UserWarning):
    """Something the user should know that does not stop the command; the CLI prints
    `chiplex: warning: MESSAGE` (not Python's file:line form)."""


class ChiplexTimeout(BaseException):
    """A time limit ran out before an answer; the CLI exits with code 3 (EXIT_UNDECIDED).

    Like KeyboardInterrupt it is an interruption, not an error of the code it interrupts: it derives
    from BaseException so that no `except Exception` on the way up turns it into another message."""
