"""The evaluator every placement search shares: candidate -> repair -> schedule -> simulate -> throughput.

Fairness between strategies comes from this one path: whatever a strategy proposes (a random cut, an
annealing move, a heuristic's answer, a policy's sample) is repaired by the same solver call
(`chiplex.targets.solver.repair`, heuristic first) when it breaks a rule, scheduled by `build_schedule`
and measured by the event-driven simulator. The simulator is the only judge of throughput.

Evaluations run through an `Executor`: `SerialExecutor` in-process, `LocalPoolExecutor` on a local
process pool sized to the machine. The graph and target are shipped to every worker once, through the
executor's `start(initializer, initargs)` (the pool initializer), and each task then carries only a small
key and a candidate array. A distributed executor implements the same three methods: `start` broadcasts
the evaluator, `map` runs tasks and returns results in input order, `close` tears down;
`chiplex.runtime_sim.ray_executor.RayExecutor` does it on a Ray cluster (`make_executor(kind="ray")`).
An executor that loses work it cannot redo raises `ExecutorError`, and a search keeps its best so far.
Because `map` preserves order and evaluation is deterministic, a search gives identical results on any
executor for the same seed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.runtime_sim.report import SimReport
from chiplex.runtime_sim.simulator import simulate
from chiplex.targets.legality import check_placement, resolve_rules
from chiplex.targets.schedule import build_schedule
from chiplex.targets.target import Target

T = TypeVar("T")
R = TypeVar("R")

SEARCH_MICROBATCHES = 16
"""Micro-batches per simulation inside search loops, at a quarter of 64's cost. 16 show the steady state
(`simulator.steady_period`) for most placements of the presets' suite; on 36-chip simba, whose
pipeline is still filling and draining then, they do not, and `EvalSettings.steady_microbatches`
takes over."""
REPORT_MICROBATCHES = 64
"""Micro-batches of the final re-simulation every strategy's reported throughput comes from."""


# -- settings and results ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSettings:
    """How a candidate is judged; part of what a search result means, so it is reported with it."""

    microbatches: int = SEARCH_MICROBATCHES
    steady_microbatches: int = REPORT_MICROBATCHES
    """A candidate whose run of `microbatches` reaches no steady state (a deep pipeline still filling or
    draining: ResNet-50 on 36-chip simba-6x6 keeps about 30 micro-batches in flight) is simulated again
    with this many, so that searches rank placements by their steady state as the final report does
    (0: never). Without it other placements could read up to 0.9% high at 16 and push a search's
    anchor out of the final re-ranking (GPT-2 small on tpu-mesh4x4)."""
    packet_bytes: int | None = None
    """None: the simulator's default (so the search measures what `chiplex simulate` measures)."""
    buffers_per_edge: int | None = None
    """None: the simulator's default."""
    repair_time_limit: float = 10.0
    """Seconds the repair may spend in MiniZinc when its heuristic fails (it rarely does)."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The judgement of one candidate."""

    placement: np.ndarray | None
    """The legal placement that was simulated: the candidate itself, or its repair; None if none."""
    throughput: float
    """Simulated samples/s of `placement`; 0.0 when no legal placement was found."""
    repaired: bool
    """Whether the candidate broke a rule and was repaired."""
    error: str = ""
    """Why no legal placement was found (the repair's message)."""
    critical: str = ""
    """The simulator's saturated resource (`chip 3` or `link 2->3`), "" when none is saturated: where a
    search should look next."""
    busy_s: tuple[float, ...] = ()
    """Seconds per micro-batch each chip computes and each used link serialises, largest first: which
    of two equally fast placements is closer to relieving its bottleneck (the learned search's
    tie-break)."""

    @property
    def hot_chip(self) -> int:
        """The critical chip, or the sending chip of the critical link; -1 when unknown."""
        kind, _, name = self.critical.partition(" ")
        if kind == "chip":
            return int(name)
        if kind == "link":
            return int(name.split("->")[0])
        return -1

    @property
    def ok(self) -> bool:
        return self.placement is not None


def strip_graph(graph: Graph) -> Graph:
    """The graph without its IR ops: cheap to pickle, and all the evaluator needs."""
    return dataclasses.replace(graph, ops=()) if graph.ops else graph


@dataclass(frozen=True)
class EvalSpec:
    """Everything a worker needs to rebuild the evaluator: pickled once per worker, not per task."""

    key: str
    graph: Graph
    target: Target
    settings: EvalSettings


# -- the evaluator -----------------------------------------------------------------------------------
class Evaluator:
    """Judges candidate placements of one graph on one target; deterministic for a given candidate."""

    def __init__(
        self, graph: Graph, target: Target, settings: EvalSettings | None = None, *, key: str = ""
    ) -> None:
        self.graph = strip_graph(graph)
        self.target = target
        self.settings = settings or EvalSettings()
        # One rules object for the evaluator's life: the repair heuristic caches its precomputed
        # problem per (graph, rules) identity, so reusing it makes every repair after the first cheap.
        self.rules = resolve_rules(self.graph, target)
        self.key = key or uuid.uuid4().hex

    @property
    def spec(self) -> EvalSpec:
        return EvalSpec(self.key, self.graph, self.target, self.settings)

    @classmethod
    def from_spec(cls, spec: EvalSpec) -> Evaluator:
        return cls(spec.graph, spec.target, spec.settings, key=spec.key)

    def legalize(self, candidate: np.ndarray) -> tuple[np.ndarray, bool]:
        """(a legal placement, whether the candidate needed repair); ChiplexError when none is found."""
        candidate = np.asarray(candidate, dtype=np.int64)
        if candidate.shape != (self.graph.num_nodes,):
            raise ChiplexError(
                f"candidate has {candidate.shape} entries for {self.graph.num_nodes} ops"
            )
        if not check_placement(self.graph, self.target, candidate, self.rules, limit_per_rule=1):
            return candidate, False
        from chiplex.targets.solver import repair

        result = repair(
            self.graph,
            self.target,
            candidate,
            exact=False,
            time_limit=self.settings.repair_time_limit,
            rules=self.rules,
        )
        placement = np.asarray(result.placement, dtype=np.int64)
        violations = check_placement(self.graph, self.target, placement, self.rules)
        if violations:
            # The checker is the oracle: a repair that is not legal is reported, never simulated.
            raise ChiplexError(f"repair returned an illegal placement: {violations[0]}")
        return placement, True

    def report(self, placement: np.ndarray, microbatches: int | None = None) -> SimReport:
        """The simulator's report for a legal placement."""
        schedule = build_schedule(self.graph, self.target, placement)
        options: dict[str, int] = {}
        if self.settings.packet_bytes is not None:
            options["packet_bytes"] = self.settings.packet_bytes
        if self.settings.buffers_per_edge is not None:
            options["buffers_per_edge"] = self.settings.buffers_per_edge
        return simulate(
            schedule,
            self.target,
            microbatches=microbatches or self.settings.microbatches,
            **options,
        )

    def simulate(self, placement: np.ndarray, microbatches: int | None = None) -> float:
        """Simulated samples/s of a legal placement."""
        return float(self.report(placement, microbatches).throughput)

    def __call__(self, candidate: np.ndarray, microbatches: int | None = None) -> Evaluation:
        try:
            placement, repaired = self.legalize(candidate)
        except ChiplexError as err:
            return Evaluation(None, 0.0, True, str(err))
        report = self.report(placement, microbatches)
        unsettled = not report.steady and microbatches is None
        if unsettled and self.settings.steady_microbatches > report.microbatches:
            report = self.report(placement, self.settings.steady_microbatches)
        # The busiest resource only explains the period when it is saturated; otherwise buffers or
        # latency set the pace and pointing a search at the busiest chip would mislead it.
        critical = report.critical if report.saturated else ""
        links = [u * report.period_s for u in report.link_utilisation if u > 0]
        busy = tuple(sorted((*report.chip_busy_s, *links), reverse=True))
        return Evaluation(
            placement, float(report.throughput), repaired, critical=critical, busy_s=busy
        )


# Evaluators installed in this process, by key: the main process for the serial executor, each pool
# worker through the pool initializer. Tasks name an evaluator by key so they pickle in a few bytes.
_INSTALLED: dict[str, Evaluator] = {}


def install_evaluator(spec: EvalSpec) -> None:
    """Pool initializer: rebuild the evaluator in this process (once per worker)."""
    if spec.key not in _INSTALLED:
        _INSTALLED[spec.key] = Evaluator.from_spec(spec)


def keep_evaluator(evaluator: Evaluator) -> None:
    """Install an evaluator built in this process as it is (no rebuild from its spec)."""
    _INSTALLED[evaluator.key] = evaluator


def installed_evaluator(key: str) -> Evaluator:
    try:
        return _INSTALLED[key]
    except KeyError:
        raise RuntimeError(
            f"no evaluator {key} in process {os.getpid()}: call executor.start(install_evaluator, "
            "(evaluator.spec,)) before mapping tasks"
        ) from None


def uninstall_evaluator(key: str) -> None:
    _INSTALLED.pop(key, None)


@dataclass(frozen=True)
class EvaluateTask:
    """`task(candidate) -> Evaluation` with the evaluator installed under `key` in the running process."""

    key: str
    microbatches: int | None = None
    """Simulate with this many micro-batches instead of the evaluator's setting (final re-ranking)."""

    def __call__(self, candidate: np.ndarray) -> Evaluation:
        return installed_evaluator(self.key)(candidate, self.microbatches)


# -- executors ----------------------------------------------------------------------------------------
EXECUTOR_KINDS = ("serial", "local", "ray")
"""Where evaluations run: this process, a local process pool, or a Ray cluster."""


class ExecutorError(ChiplexError):
    """The executor lost work it could not redo (a worker died, or a task kept failing or timing out
    beyond its retries). A search that meets it stops and reports the best placement found so far."""


@runtime_checkable
class Executor(Protocol):
    """Runs picklable tasks over items, results in input order.

    `start(initializer, initargs)` runs `initializer(*initargs)` once in every worker before any task
    (how shared state such as the graph reaches the workers once); it may be called again with other
    arguments, which re-prepares the workers. `workers` is the number of tasks that run at once.
    """

    workers: int

    def start(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None: ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs every task in the calling process (the reference the pool must match)."""

    workers = 1

    def start(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        initializer(*initargs)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]

    def close(self) -> None:
        pass

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _pool_worker_init(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """A pool worker ignores Ctrl-C: the terminal sends SIGINT to the whole process group, and the main
    process decides what an interrupt means (a search keeps its best so far) and shuts the pool down.
    Without this an idle worker died with a KeyboardInterrupt traceback on the user's terminal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


class LocalPoolExecutor:
    """A `concurrent.futures.ProcessPoolExecutor` with one worker per CPU by default.

    The pool is created by `start`, with the initializer, so the shared state is pickled once per worker.
    On Linux the workers are forked (fast start, no re-import); elsewhere they are spawned.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(int(workers or default_workers()), 1)
        self._pool: ProcessPoolExecutor | None = None

    def start(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self.close()
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_pool_worker_init,
            initargs=(initializer, initargs),
        )

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self._pool is None:
            raise RuntimeError("LocalPoolExecutor.map before start()")
        # A few chunks per worker: fewer round trips than one task each, still balanced.
        chunksize = max(1, len(items) // (4 * self.workers))
        try:
            return list(self._pool.map(fn, items, chunksize=chunksize))
        except BrokenProcessPool as err:
            # A worker process died (killed, out of memory); the pool cannot run anything any more.
            self.close()
            raise ExecutorError(f"a local pool worker died: {err}") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalPoolExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(
    workers: int | None,
    kind: str | None = None,
    address: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Executor:
    """An executor of `kind` (one of EXECUTOR_KINDS) with `workers` workers.

    kind None: `workers` 1 -> serial; None -> a pool sized to the machine (serial on a 1-CPU machine).
    kind "ray": a `RayExecutor` on the cluster at `address` (default `RAY_ADDRESS`, else a local Ray
    started for the run); `workers` None -> one per CPU of the cluster. Ray is imported by `start`,
    which reports its slow steps (starting Ray, its workers) to `progress`.
    """
    if workers is not None and workers < 1:
        raise ChiplexError(f"workers must be >= 1, got {workers}")
    if kind not in (None, *EXECUTOR_KINDS):
        raise ChiplexError(
            f"unknown executor {kind!r}; expected one of {', '.join(EXECUTOR_KINDS)}"
        )
    if address is not None and kind != "ray":
        raise ChiplexError("a Ray address needs the ray executor (--executor ray)")
    if kind == "ray":
        from chiplex.runtime_sim.ray_executor import RayExecutor

        return RayExecutor(workers, address, progress=progress)
    if kind == "serial":
        if workers not in (None, 1):
            raise ChiplexError(f"the serial executor runs 1 worker, not {workers}")
        return SerialExecutor()
    count = default_workers() if workers is None else workers
    if kind == "local":
        return LocalPoolExecutor(count)
    return SerialExecutor() if count == 1 else LocalPoolExecutor(count)
