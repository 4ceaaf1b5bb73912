"""A wall-clock limit for a whole command (`--time-limit`), shared by the subcommands that offer one."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from chiplex.errors import ChiplexTimeout

REPEAT_SECONDS = 0.25
"""How soon a time limit's interruption comes again when the first was lost (`time_limit`)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise ChiplexTimeout (exit code 3) in the main thread once `seconds` have passed.

    A SIGALRM timer interrupts whatever runs (the solver's subprocesses are killed by
    `subprocess.run` on the way out). Without a limit, or off the main thread, it does nothing.
    The timer repeats every REPEAT_SECONDS until the block is left: an interruption that lands in a
    finalizer (`__del__`, a weakref callback) is printed and dropped by Python, and the next one
    ends the command instead.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ChiplexTimeout(f"{what} did not finish within --time-limit {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
