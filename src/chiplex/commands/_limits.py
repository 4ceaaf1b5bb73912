"""A wall-clock limit for a whole command (`--time-limit`), shared by the subcommands that offer one."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from chiplex.errors import ChiplexTimeout

REPEAT_SECONDS = 0.25
"""How soon a time limit's interruption comes again when the first was lost (`time_limit`)."""


@dataclass(frozen=True)
class Deadline:
    """When a command's time is up (`time.monotonic()`; None: never)."""

    at: float | None
    message: str = ""

    def check(self) -> None:
        """Raise ChiplexTimeout if the time is up: called before a command writes its outputs, so
        that work finished after its limit (its interruption lost) is not written as if in time."""
        if self.at is not None and time.monotonic() >= self.at:
            raise ChiplexTimeout(self.message)


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[Deadline]:
    """Raise ChiplexTimeout (exit code 3) in the main thread once `seconds` have passed.

    A SIGALRM timer interrupts whatever runs (the solver's subprocesses are killed by
    `subprocess.run` on the way out). An interruption that lands in a finalizer (`__del__`, a gc
    callback) is printed and dropped by Python, so the timer repeats every REPEAT_SECONDS until the
    block is left, and the yielded `Deadline` is checked before outputs are written. Without a
    limit it does nothing; off the main thread only the `Deadline` check works.
    """
    if not seconds:
        yield Deadline(None)
        return
    message = f"{what} did not finish within --time-limit {seconds:g} s"
    deadline = Deadline(time.monotonic() + seconds, message)
    if threading.current_thread() is not threading.main_thread():
        yield deadline
        return

    def expire(signum: int, frame: object) -> None:
        raise ChiplexTimeout(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    try:
        yield deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
