"""Where a long command is: on a terminal, a status line naming the phase running (a tqdm bar on
stderr, cleared when done, as `chiplex search` draws its bar); everywhere, CPU seconds per phase for
the command's closing line when it took long."""

from __future__ import annotations

import os
import sys
from typing import TextIO

LONG_CPU_S = 5.0
"""A command that took at least this many CPU seconds names its longest phases on its closing line
(a 48-layer GPT-2 compiles in about 8 s of CPU, the zoo's BERT-base in under 1)."""
LISTED_PHASES = 3


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (a solver that runs in a
    subprocess, such as MiniZinc, or `--strategy cp`'s 30 s search, counts where it ran)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class PhaseMeter:
    """A `chiplex.compile.Phase` callback: shows the phase that starts and counts each one's CPU."""

    def __init__(self, title: str, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        self.cpu: dict[str, float] = {}
        self._phase: str | None = None
        self._started = cpu_seconds()
        self._bar = tqdm(
            total=None,
            desc=title,
            bar_format="{desc} [{elapsed}]",
            file=self.stream,
            dynamic_ncols=True,
            leave=False,
            disable=None,  # no status line when stderr is not a terminal (a log gets no \r lines)
        )

    def __call__(self, phase: str) -> None:
        self._count()
        self._phase = phase
        self._bar.set_description_str(f"{self.title}: {phase}")

    def note(self, line: str) -> None:
        """Print a line on the meter's stream, above the status line (which tqdm redraws)."""
        self._bar.write(line, file=self.stream)
        self.stream.flush()

    def _count(self) -> None:
        now = cpu_seconds()
        if self._phase is not None:
            self.cpu[self._phase] = self.cpu.get(self._phase, 0.0) + now - self._started
        self._started = now

    def close(self) -> None:
        """Count the phase running and clear the status line (before the command prints)."""
        self._count()
        self._phase = None
        self._bar.close()

    def summary(self) -> str:
        """`; CPU: place 6.4 s, parse 1.0 s, ...` (the longest phases) when the phases took at least
        LONG_CPU_S CPU seconds together, else nothing."""
        if sum(self.cpu.values()) < LONG_CPU_S:
            return ""
        longest = sorted(self.cpu.items(), key=lambda item: (-item[1], item[0]))[:LISTED_PHASES]
        return "; CPU: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in longest)
