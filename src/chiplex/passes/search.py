"""Placement search: one interface for every strategy, equal budgets, one judge.

    result = search(graph, target, "anneal", Budget(evaluations=2000), seed=0)
    result.placement, result.throughput, result.gap_to_bound, result.history

A strategy is a function `(run: SearchRun, rng: numpy.random.Generator) -> None` that proposes
candidate placements in batches through `run.evaluate(candidates)` until `run.exhausted`. It never
judges a candidate itself: `run.evaluate` sends every candidate through the same path (repair when it
breaks a rule, `build_schedule`, the simulator; see `chiplex.runtime_sim.evaluate`), counts it against the
budget, and keeps the best legal placement and the history (evaluation index, wall time, best so far).
`run.submit(candidates)` is its asynchronous form (the answer is collected later), for a strategy that
has work of its own to do while a batch is judged.
So strategies compare on equal terms, and a new one (the learned placer) joins `SEARCH_STRATEGIES`
with one line.

Determinism: all randomness comes from `numpy.random.default_rng(seed)`; candidates are generated in
batches of a fixed size that does not depend on the number of workers, and results come back in order,
so the serial and the pool executors give identical results. Under an evaluation budget the result is
a pure function of (graph, target, strategy, budget, seed). A seconds budget stops at a wall-clock time,
so how far the search gets depends on the machine.

Throughput: inside the loop each candidate is simulated with `search_microbatches` (16) micro-batches,
a quarter of the cost of the simulator's default 64, and again with 64 when 16 reach no steady state
(`EvalSettings.steady_microbatches`). The FINAL_CANDIDATES best distinct placements are re-simulated
with `microbatches` (64) and the best of those is the reported `throughput` and placement, for every
strategy alike.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.passes.strategies import dp_start, place_dp, place_greedy
from chiplex.runtime_sim.evaluate import (
    REPORT_MICROBATCHES,
    SEARCH_MICROBATCHES,
    EvalSettings,
    EvaluateTask,
    Evaluation,
    Evaluator,
    Executor,
    ExecutorError,
    SerialExecutor,
    install_evaluator,
    keep_evaluator,
    make_executor,
    uninstall_evaluator,
)
from chiplex.targets.cost import op_times, throughput_upper_bound
from chiplex.targets.target import Target

RANDOM_BATCH = 16
"""Candidates per batch of `random` (a multiple of any small worker count keeps the pool busy)."""
ANNEAL_BATCH = 8
"""Proposals per annealing step, all from the same state and evaluated together."""
RESPLIT_NOISE = 0.3
"""Log-normal noise on op times when re-cutting: the roofline guide misses DRAM and links."""
ANNEAL_T0 = 0.02
"""Initial temperature on log-throughput: a move 2% worse is accepted with probability 1/e."""
ANNEAL_T_END = 2e-4
"""Final temperature: by the end only moves within 0.02% are accepted with that probability."""
FINAL_CANDIDATES = 8
"""Distinct best placements of a search re-simulated with the reporting micro-batch count."""
CP_TIME_LIMIT = 60.0
"""Seconds `cp` may spend in MiniZinc when the budget gives no seconds."""
INTERRUPTED = "interrupted (Ctrl-C)"
"""`SearchResult.stopped` of a search ended by KeyboardInterrupt, which keeps the best found so far."""
BOUND_TOLERANCE = 2e-6
"""A placement this close to the upper bound (relative) has reached it: the bound's pipeline-cut term
is found by bisection to within 1e-6, so an optimal placement can read that much below it."""


# -- budget and results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """How much a search may spend: a number of evaluations, wall-clock seconds, or both (first wins)."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ChiplexError("a search budget needs a number of evaluations and/or seconds")
        if self.evaluations is not None and (
            isinstance(self.evaluations, bool) or self.evaluations < 1
        ):
            raise ChiplexError(f"budget evaluations must be >= 1, got {self.evaluations!r}")
        if self.seconds is not None and not self.seconds > 0:
            raise ChiplexError(f"budget seconds must be > 0, got {self.seconds!r}")

    def __str__(self) -> str:
        parts = []
        if self.evaluations is not None:
            parts.append(f"{self.evaluations} evaluations")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s")
        return " / ".join(parts)


@dataclass(frozen=True)
class HistoryPoint:
    eval_index: int
    """Evaluations done so far (1 for the first)."""
    wall_s: float
    """Seconds since the search started when this evaluation's batch completed."""
    best_throughput: float
    """Best simulated samples/s so far (at the search's micro-batch count); 0.0 before any legal one."""


@dataclass(frozen=True, eq=False)
class SearchResult:
    placement: np.ndarray
    """The best legal placement found."""
    throughput: float
    """Its simulated samples/s, re-simulated with `microbatches` micro-batches."""
    evaluations: int
    seconds: float
    history: list[HistoryPoint]
    strategy: str
    seed: int
    upper_bound: float
    """samples/s no placement can beat (`throughput_upper_bound`)."""
    upper_bound_reason: str = ""
    search_throughput: float = 0.0
    """The best placement's samples/s as measured inside the loop (`search_microbatches`)."""
    microbatches: int = REPORT_MICROBATCHES
    search_microbatches: int = SEARCH_MICROBATCHES
    repaired: int = 0
    """Evaluated candidates that broke a rule and were repaired."""
    failed: int = 0
    """Candidates for which no legal placement was found."""
    notes: tuple[str, ...] = ()
    stopped: str = ""
    """Why the search ended before its budget (an executor failure, or INTERRUPTED), "" when it did
    not: the result is then the best placement found before it."""
    interrupted: bool = False
    """Whether Ctrl-C (KeyboardInterrupt) ended the search; `stopped` is then INTERRUPTED."""

    @property
    def gap_to_bound(self) -> float:
        """1 - throughput / upper bound: 0 means provably optimal."""
        return 1.0 - self.throughput / self.upper_bound if self.upper_bound > 0 else 0.0

    def reached(self, fraction: float = 0.99) -> HistoryPoint:
        """The first history point whose best is within `fraction` of the final best."""
        final = self.history[-1].best_throughput
        for point in self.history:
            if point.best_throughput >= fraction * final:
                return point
        return self.history[-1]


# -- the run a strategy drives ----------------------------------------------------------------------
class SearchRun:
    """What a strategy sees: the problem, the budget, and `evaluate` (the only way to judge candidates)."""

    def __init__(
        self,
        graph: Graph,
        target: Target,
        budget: Budget,
        seed: int,
        evaluator: Evaluator,
        executor: Executor,
        on_progress: Callable[[int, float], None] | None = None,
        options: Mapping[str, Any] | None = None,
        stop_at: float | None = None,
    ) -> None:
        self.graph = evaluator.graph
        self.options: Mapping[str, Any] = options or {}
        """Strategy-specific settings (the learned placer's checkpoint); other strategies ignore them."""
        self.target = target
        self.budget = budget
        self.seed = seed
        self.rules = evaluator.rules
        self.evaluations = 0
        self.repaired = 0
        self.failed = 0
        self.history: list[HistoryPoint] = []
        self.best: Evaluation | None = None
        self.notes: list[str] = []
        self.stopped = ""
        """The executor failure that ended the search early ("" while none)."""
        self.first_error = ""
        """Why the first candidate without a legal repair had none (the repair's message)."""
        self.stop_at = stop_at
        """Samples/s at which the search ends before its budget: a proved upper bound, which nothing
        can beat (None: spend the whole budget)."""
        self._executor = executor
        self._task = EvaluateTask(evaluator.key)
        self._cache: dict[bytes, Evaluation] = {}
        self.top: list[Evaluation] = []
        """The FINAL_CANDIDATES best distinct legal placements, best first (for the final re-ranking)."""
        self._top_keys: set[bytes] = set()
        self._on_progress = on_progress
        self._started = time.perf_counter()
        self.judging_seconds = 0.0
        """Wall seconds batches spent on the executor, from submission to the last result."""
        self._in_flight = False
        self._background: ThreadPoolExecutor | None = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def remaining(self) -> int | None:
        """Evaluations left, or None when only seconds limit the search."""
        if self.budget.evaluations is None:
            return None
        return max(self.budget.evaluations - self.evaluations, 0)

    @property
    def reached_stop(self) -> bool:
        return self.stop_at is not None and self.best_throughput >= self.stop_at * (
            1 - BOUND_TOLERANCE
        )

    @property
    def exhausted(self) -> bool:
        if self.stopped or self.remaining == 0 or self.reached_stop:
            return True
        return self.budget.seconds is not None and self.elapsed >= self.budget.seconds

    def fraction(self) -> float:
        """How much of the budget is spent, in [0, 1]: by evaluations when they are limited (so
        schedules such as annealing's temperature stay deterministic), else by seconds."""
        if self.budget.evaluations is not None:
            return min(self.evaluations / self.budget.evaluations, 1.0)
        assert self.budget.seconds is not None
        return min(self.elapsed / self.budget.seconds, 1.0)

    @property
    def best_throughput(self) -> float:
        return self.best.throughput if self.best is not None else 0.0

    def evaluate(self, candidates: Sequence[np.ndarray]) -> list[Evaluation]:
        """Judge candidates (truncated to the evaluations left); results in order.

        Every candidate counts against the budget, repeats included: a repeat is answered from a cache
        instead of the simulator, but proposing it still used the strategy's turn.
        """
        return self.submit(candidates)()

    def submit(self, candidates: Sequence[np.ndarray]) -> Callable[[], list[Evaluation]]:
        """Start judging candidates; returns the function that waits for `evaluate`'s answer.

        A strategy with work of its own (the learned placer's update) does it between the two calls,
        while the executor's workers simulate: on a pool the batch runs in the background at once; on
        the serial executor (one worker, this process) it runs when the answer is asked for. Either
        way the answer, the budget and the bookkeeping are those of `evaluate`, so the result does
        not depend on the executor. One batch at a time: ask for a batch's answer before submitting
        the next.
        """
        if self._in_flight:
            raise RuntimeError("SearchRun.submit: the previous batch's answer was not collected")
        # The first batch always runs: a strategy whose own work (cp's solver, a slow heuristic) used
        # up the seconds still gets its answer judged.
        if self.stopped or (self.exhausted and self.evaluations > 0):
            return list
        take = list(candidates)
        if self.remaining is not None:
            take = take[: self.remaining]
        arrays = [np.asarray(c, dtype=np.int64) for c in take]
        keys = [a.tobytes() for a in arrays]
        todo: dict[bytes, np.ndarray] = {}
        for key, array in zip(keys, arrays, strict=True):
            if key not in self._cache and key not in todo:
                todo[key] = array
        judge = self._start_judging(list(todo.values())) if todo else None
        self._in_flight = True

        def collect() -> list[Evaluation]:
            self._in_flight = False
            if judge is not None:
                try:
                    results, seconds = judge()
                except ExecutorError as err:
                    # The batch is lost, not the search: stop here and keep what was found so far.
                    self.stopped = str(err)
                    return []
                self.judging_seconds += seconds
                self._cache.update(zip(todo.keys(), results, strict=True))
            return self._record([self._cache[key] for key in keys])

        return collect

    def _start_judging(
        self, placements: list[np.ndarray]
    ) -> Callable[[], tuple[list[Evaluation], float]]:
        """Run the executor on `placements`: in a background thread when its workers are other
        processes (the thread only waits on them), else when the answer is wanted. The answer comes
        with the seconds from the start of the batch to its last result."""

        def judge() -> tuple[list[Evaluation], float]:
            started = time.perf_counter()
            results = self._executor.map(self._task, placements)
            return results, time.perf_counter() - started

        if self._executor.workers <= 1:
            return judge
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge")
        return self._background.submit(judge).result

    def _record(self, out: list[Evaluation]) -> list[Evaluation]:
        """Count judged candidates against the budget, track the best and the history."""
        now = self.elapsed
        for result in out:
            self.evaluations += 1
            self.repaired += result.repaired and result.ok
            self.failed += not result.ok
            if not result.ok and not self.first_error:
                self.first_error = result.error
            # Strictly better only: among equal throughputs the earliest wins, deterministically.
            if result.ok and result.throughput > self.best_throughput:
                self.best = result
            self._keep_top(result)
            self.history.append(HistoryPoint(self.evaluations, now, self.best_throughput))
        if self._on_progress is not None:
            self._on_progress(len(out), self.best_throughput)
        return out

    def close(self) -> None:
        """Stop the background thread `submit` uses (waits for a batch still in flight)."""
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None

    def _keep_top(self, result: Evaluation) -> None:
        if result.placement is None:
            return
        if len(self.top) == FINAL_CANDIDATES and result.throughput <= self.top[-1].throughput:
            return
        key = result.placement.tobytes()
        if key in self._top_keys:
            return
        # Insert after every equal value: earlier finds stay ahead of later ones, deterministically.
        at = next(
            (i for i, r in enumerate(self.top) if r.throughput < result.throughput), len(self.top)
        )
        self.top.insert(at, result)
        self._top_keys.add(key)
        if len(self.top) > FINAL_CANDIDATES:
            dropped = self.top.pop()
            assert dropped.placement is not None
            self._top_keys.discard(dropped.placement.tobytes())

    def final(self, microbatches: int) -> tuple[Evaluation, Evaluation]:
        """Re-simulate the top candidates with `microbatches`; (its search evaluation, its final one)
        for the best. The loop's measure can differ from the reporting settings' (another micro-batch
        count), so its favourite is not always the best there. After an executor failure this runs in
        this process, where the evaluator is kept."""
        placements = [r.placement for r in self.top]
        task = EvaluateTask(self._task.key, microbatches)
        finals = None
        if not self.stopped:
            try:
                finals = self._executor.map(task, placements)
            except ExecutorError as err:
                self.stopped = str(err)
                self.notes.append(f"final re-simulation ran in this process: {err}")
        if finals is None:
            finals = SerialExecutor().map(task, placements)
        best = max(range(len(finals)), key=lambda i: (finals[i].throughput, -i))
        return self.top[best], finals[best]


SearchStrategy = Callable[[SearchRun, np.random.Generator], None]


# -- strategies ------------------------------------------------------------------------------------
def random_cut(num_nodes: int, num_chips: int, rng: np.random.Generator) -> np.ndarray:
    """Cut the topological order at random points into m contiguous stages on chips 0..m-1.

    Such a placement keeps acyclic dataflow and no-skipping by construction, so random search explores
    the space the repair does not have to fix wholesale (uniform per-op chips would be repaired into a
    few nearest legal placements). Half the samples use every chip, half a uniform number of chips.
    """
    most = min(num_chips, num_nodes)
    stages = most if rng.random() < 0.5 else int(rng.integers(1, most + 1))
    cuts = np.sort(rng.choice(np.arange(1, num_nodes), size=stages - 1, replace=False))
    return np.searchsorted(cuts, np.arange(num_nodes), side="right").astype(np.int64)


def search_random(run: SearchRun, rng: np.random.Generator) -> None:
    """Random search: batches of random contiguous cuts, each repaired and simulated."""
    n, k = run.graph.num_nodes, run.target.num_chips
    while not run.exhausted:
        run.evaluate([random_cut(n, k, rng) for _ in range(RANDOM_BATCH)])


@dataclass
class _Moves:
    """Neighbourhood of a legal placement for annealing; moves keep acyclic dataflow by construction."""

    src: np.ndarray
    dst: np.ndarray
    num_nodes: int
    num_chips: int
    scale: float
    """Mean number of ops a boundary shift moves."""
    times: np.ndarray
    """Roofline seconds per op (weights in SRAM): a rough guide for re-splitting, not a judge."""

    def propose(self, p: np.ndarray, hot: int, rng: np.random.Generator) -> np.ndarray:
        """A neighbour of p. `hot` is the simulator's critical chip (-1: unknown): half the moves focus
        on it, because only moves that touch the bottleneck can raise the throughput."""
        if self.num_chips == 1 or self.num_nodes == 1:
            return p.copy()
        focus = hot if hot >= 0 and rng.random() < 0.5 else -1
        kind = rng.random()
        q = None
        if kind < 0.25:
            q = self.resplit(p, focus, rng)
        elif kind < 0.40:
            q = self.merge_split(p, hot, rng)
        elif kind < 0.75:
            q = self.shift_boundary(p, focus, rng)
        if q is None:
            q = self.move_op(p, focus, rng)
        return q if q is not None else p.copy()

    def resplit(self, p: np.ndarray, hot: int, rng: np.random.Generator) -> np.ndarray | None:
        """Re-cut the ops of a window of 2..6 consecutive chips (around the hot chip) into stages of
        about equal noisy roofline time.

        Unloading a bottleneck one op at a time makes a neighbour the bottleneck, so the annealer would
        have to accept a chain of worse moves; re-cutting the window moves every boundary in it at once.
        The window's ops keep their topological (index) order and its edges to chips outside the window
        keep pointing forward, so the result stays acyclic; chips the new cut leaves empty are closed up
        by renumbering the later chips.
        """
        k = self.num_chips
        width = int(rng.integers(2, min(6, k) + 1))
        centre = hot if hot >= 0 else int(rng.integers(0, int(p.max()) + 1))
        a = int(np.clip(centre - int(rng.integers(0, width)), 0, k - width))
        b = a + width - 1
        ops = np.flatnonzero((p >= a) & (p <= b))
        if len(ops) < 2:
            return None
        noisy = self.times[ops] * np.exp(RESPLIT_NOISE * rng.standard_normal(len(ops)))
        cum = np.cumsum(noisy)
        total = cum[-1]
        if not total > 0:
            return None
        stage = np.minimum(((cum - noisy / 2) / total * width).astype(np.int64), width - 1)
        # Close up stages the cut left empty (one op longer than a share), inside and after the window.
        present = np.unique(stage)
        q = p.copy()
        q[ops] = a + np.searchsorted(present, stage)
        gap = width - len(present)
        if gap:
            q[p > b] -= gap
        return q

    def merge_split(self, p: np.ndarray, hot: int, rng: np.random.Generator) -> np.ndarray | None:
        """Merge two light neighbouring stages and split the hot one in two (by noisy roofline time).

        A chip whose stage is nearly idle is wasted capacity anywhere along the pipeline; this move
        hands it to the bottleneck in one step, renumbering the chips in between. Merging neighbours
        and splitting a stage in index order both keep every edge forward. With a free chip left
        (fewer chips in use than the target has) the split alone is proposed half of the time.
        """
        used = int(p.max()) + 1
        stages = [np.flatnonzero(p == c) for c in range(used)]
        busy = np.array([self.times[ops].sum() for ops in stages])
        h = hot if 0 <= hot < used else int(np.argmax(busy))
        if len(stages[h]) < 2:
            return None
        merge = -1
        if used == self.num_chips or rng.random() < 0.5:
            pairs = np.array([m for m in range(used - 1) if m != h and m + 1 != h], dtype=np.int64)
            if len(pairs) == 0:
                return None
            load = busy[pairs] + busy[pairs + 1]
            # Light pairs first: weight (lightest load / load)^4, drawn at random.
            weights = (load.min() / np.maximum(load, 1e-30)) ** 4 if load.min() > 0 else None
            chance = None if weights is None else weights / weights.sum()
            merge = int(rng.choice(pairs, p=chance))
        ops = stages[h]
        noisy = self.times[ops] * np.exp(RESPLIT_NOISE * rng.standard_normal(len(ops)))
        cum = np.cumsum(noisy)
        cut = int(np.clip(np.searchsorted(cum, cum[-1] / 2), 1, len(ops) - 1))
        new_stages: list[np.ndarray] = []
        for c, members in enumerate(stages):
            if merge >= 0 and c == merge + 1:
                new_stages[-1] = np.concatenate([new_stages[-1], members])
            elif c == h:
                new_stages.extend([members[:cut], members[cut:]])
            else:
                new_stages.append(members)
        if len(new_stages) > self.num_chips:
            return None
        q = p.copy()
        for c, members in enumerate(new_stages):
            q[members] = c
        return q

    def shift_boundary(
        self, p: np.ndarray, hot: int, rng: np.random.Generator
    ) -> np.ndarray | None:
        """Move the last ops (in topological order) of chip c to c + 1, or the first ops of c + 1 to c.

        The last ops of a chip only feed ops on later chips or each other, so moving a suffix one chip
        up keeps every edge forward; symmetrically for a prefix moving down. Boundary c may be the
        last used chip's, which then opens a new chip. With a hot chip h, the move takes ops off h:
        its suffix up (boundary h) or its prefix down (boundary h - 1).
        """
        used = int(p.max()) + 1
        top = min(used, self.num_chips - 1)
        if top == 0:
            return None
        size = int(rng.geometric(1.0 / self.scale))
        q = p.copy()
        if 0 <= hot < used:
            sides = [side for side, ok in (("up", hot < top), ("down", hot > 0)) if ok]
            if not sides:
                return None
            side = sides[int(rng.integers(len(sides)))]
            c, down = (hot, False) if side == "up" else (hot - 1, True)
        else:
            c = int(rng.integers(0, top))
            down = c + 1 < used and rng.random() < 0.5
        if down:
            ops = np.flatnonzero(p == c + 1)
            # The last used chip may empty (the pipeline gets shorter); an inner chip may not.
            size = min(size, len(ops) - (0 if c + 1 == used - 1 else 1))
            if size < 1:
                return None
            q[ops[:size]] = c
        else:
            ops = np.flatnonzero(p == c)
            size = min(size, len(ops) - 1)
            if size < 1:
                return None
            q[ops[-size:]] = c + 1
        return q

    def move_op(self, p: np.ndarray, hot: int, rng: np.random.Generator) -> np.ndarray | None:
        """Move one op (of the hot chip, if given) to another chip between its latest producer's
        and earliest consumer's chips."""
        used = int(p.max()) + 1
        lo = np.zeros(self.num_nodes, dtype=np.int64)
        np.maximum.at(lo, self.dst, p[self.src])
        hi = np.full(self.num_nodes, min(used, self.num_chips - 1), dtype=np.int64)
        np.minimum.at(hi, self.src, p[self.dst])
        counts = np.bincount(p, minlength=self.num_chips)
        alone = counts[p] == 1
        # An op alone on its chip may only leave the last chip, and only downward (no empty chip inside).
        hi = np.where(alone, np.minimum(hi, p), hi)
        ok = (hi > lo) & (~alone | (p == used - 1))
        movable = np.flatnonzero(ok & (p == hot)) if hot >= 0 else np.empty(0, dtype=np.int64)
        if len(movable) == 0:
            movable = np.flatnonzero(ok)
        if len(movable) == 0:
            return None
        v = int(movable[rng.integers(len(movable))])
        options = [c for c in range(int(lo[v]), int(hi[v]) + 1) if c != p[v]]
        q = p.copy()
        q[v] = options[int(rng.integers(len(options)))]
        return q


def _temperature(fraction: float) -> float:
    """Geometric cooling from ANNEAL_T0 to ANNEAL_T_END over the budget."""
    return ANNEAL_T0 * (ANNEAL_T_END / ANNEAL_T0) ** fraction


def _start_placement(run: SearchRun, rng: np.random.Generator) -> Evaluation | None:
    """The annealer's first state: the better of dp's and greedy's placements (dp's model of the
    period is not the simulator's, so either can win), else random cuts until one is legal."""
    candidates = []
    for place in (place_dp, place_greedy):
        try:
            candidates.append(place(run.graph, run.target, run.seed))
        except ChiplexError:
            continue
    legal = [r for r in run.evaluate(candidates) if r.ok]
    if legal:
        return max(legal, key=lambda r: r.throughput)  # max keeps the first of equals (dp)
    while not run.exhausted:
        for result in run.evaluate(
            [
                random_cut(run.graph.num_nodes, run.target.num_chips, rng)
                for _ in range(RANDOM_BATCH)
            ]
        ):
            if result.ok:
                return result
    return None


def search_anneal(run: SearchRun, rng: np.random.Generator) -> None:
    """Simulated annealing over legal placements, starting from the better of dp's and greedy's.

    Each step proposes ANNEAL_BATCH moves from the current state (window re-cuts, merge-and-split,
    boundary shifts and single-op moves, see `_Moves`) and evaluates them together, which is what lets
    the pool help a sequential method. A move that breaks a rule (memory, hop span) is repaired like
    any candidate, and the repaired placement becomes the state if accepted.
    If the best proposal improves on the current state the search moves there; otherwise the proposals
    are tried in order with the Metropolis rule on log-throughput, accept with probability
    exp(delta / T), and the first accepted one becomes the state. Proposals after an accepted one are
    discarded (they were drawn from the old state) but still count, and any of them may still become the
    best found. T cools geometrically from ANNEAL_T0 to ANNEAL_T_END over the budget.
    """
    start = _start_placement(run, rng)
    if start is None or start.placement is None:
        return
    state, value, hot = start.placement, start.throughput, start.hot_chip
    n, k = run.graph.num_nodes, run.target.num_chips
    used = int(state.max()) + 1
    moves = _Moves(
        run.graph.src,
        run.graph.dst,
        n,
        k,
        scale=max(1.0, n / used / 12),
        times=op_times(run.graph, run.target),
    )
    while not run.exhausted:
        temperature = _temperature(run.fraction())
        seen = {state.tobytes()}
        batch: list[np.ndarray] = []
        for _ in range(ANNEAL_BATCH):
            # A few redraws avoid spending evaluations on a repeat of the state or of the batch.
            for _ in range(8):
                candidate = moves.propose(state, hot, rng)
                if candidate.tobytes() not in seen:
                    break
            seen.add(candidate.tobytes())
            batch.append(candidate)
        results = run.evaluate(batch)
        draws = rng.random(len(results))  # one draw per proposal keeps the stream aligned
        legal = [(i, r) for i, r in enumerate(results) if r.ok and r.throughput > 0]
        if not legal:
            continue
        _, best = max(legal, key=lambda item: (item[1].throughput, -item[0]))
        if best.throughput > value:
            chosen: Evaluation | None = best
        else:
            chosen = None
            for i, result in legal:
                delta = math.log(result.throughput) - math.log(value)
                if draws[i] < math.exp(delta / temperature):
                    chosen = result
                    break
        if chosen is not None and chosen.placement is not None:
            state, value, hot = chosen.placement, chosen.throughput, chosen.hot_chip


def _one_shot(place: Callable[[Graph, Target, int], np.ndarray]) -> SearchStrategy:
    """A heuristic that answers once: one evaluation, whatever the budget."""

    def strategy(run: SearchRun, rng: np.random.Generator) -> None:
        del rng  # the heuristic gets the seed itself
        run.evaluate([place(run.graph, run.target, run.seed)])

    strategy.__doc__ = f"One evaluation of `{place.__name__}`'s placement."
    return strategy


def search_learned(run: SearchRun, rng: np.random.Generator) -> None:
    """PPO on the GNN placement policy (`chiplex.passes.learned`; imported on use: it loads torch)."""
    from chiplex.passes.learned import search_learned as learned

    learned(run, rng)


def search_cp(run: SearchRun, rng: np.random.Generator) -> None:
    """MiniZinc's period optimisation (dp's stage model, `chiplex.targets.period_model`), limited to the budget's seconds (or CP_TIME_LIMIT); one evaluation.

    On graphs where the solver finishes within the limit the answer is proved optimal for the solver's
    model; otherwise it is the best the solver found (at least its heuristic's), noted in the result.
    """
    del rng
    from chiplex.targets.solver import optimize

    limit = run.budget.seconds if run.budget.seconds is not None else CP_TIME_LIMIT
    limit = max(limit - run.elapsed, 1.0)
    from chiplex.targets.solver_choice import backend_for, solver_for

    # dp's split is the answer to beat: the solver then searches only for strictly better periods.
    start = dp_start(run.graph, run.target)
    started = time.perf_counter()
    result = optimize(run.graph, run.target, time_limit=limit, seed=run.seed, start=start)
    # The time it took, not the limit: CP-SAT also stops early, with its best so far, on Ctrl-C.
    took = time.perf_counter() - started
    run.notes.append(
        f"cp ({backend_for(solver_for(run.target), 'optimize.mzn')}): "
        + (
            "proved optimal for its model (dp's stage model: compute, boundary links, buffers)"
            if result.proved_optimal
            else f"{result.claim} for its model after {took:.1f} s of its {limit:.1f} s limit"
        )
    )
    run.evaluate([result.placement])


SEARCH_STRATEGIES: dict[str, SearchStrategy] = {
    "random": search_random,
    "anneal": search_anneal,
    "greedy": _one_shot(place_greedy),
    "dp": _one_shot(place_dp),
    "cp": search_cp,
    "learned": search_learned,
}


def get_search_strategy(name: str) -> SearchStrategy:
    if name not in SEARCH_STRATEGIES:
        raise ChiplexError(
            f"unknown search strategy {name!r}; expected one of {', '.join(SEARCH_STRATEGIES)}"
        )
    return SEARCH_STRATEGIES[name]


# -- the entry point ---------------------------------------------------------------------------------
def search(
    graph: Graph,
    target: Target,
    strategy: str,
    budget: Budget,
    seed: int = 0,
    *,
    executor: Executor | None = None,
    workers: int | None = 1,
    progress: bool = False,
    microbatches: int = REPORT_MICROBATCHES,
    search_microbatches: int = SEARCH_MICROBATCHES,
    settings: EvalSettings | None = None,
    options: Mapping[str, Any] | None = None,
    stop_at_bound: bool = True,
    keep_best_on_interrupt: bool = False,
) -> SearchResult:
    """Run `strategy` on (graph, target) within `budget`; the best legal placement and how it was found.

    `executor` runs the evaluations (it is started for this graph and left open for the caller to close);
    without one, `workers` picks serial (1) or a local process pool (None: one worker per CPU), closed
    at the end. `progress` shows a tqdm bar with the best so far on stderr. `options` reach the strategy
    as `run.options` (the learned placer's checkpoint, see `chiplex.passes.learned`). With
    `stop_at_bound` the search ends as soon as a placement reaches `throughput_upper_bound`, which no
    placement can beat; without it the whole budget is spent (comparisons at equal budgets).
    With `keep_best_on_interrupt`, Ctrl-C (KeyboardInterrupt) during the strategy ends the search
    with the best placement so far (`result.interrupted`) instead of propagating.
    """
    strategy_fn = get_search_strategy(strategy)
    if graph.num_nodes == 0:
        raise ChiplexError(f"{graph.name} has no ops to place")
    eval_settings = settings or EvalSettings(microbatches=search_microbatches)
    if budget.seconds is not None and eval_settings.repair_time_limit > budget.seconds:
        # One repair whose heuristic fails may not spend more than the whole search may: without
        # this a 5 s search of a problem the heuristic cannot repair took 16 x 10 s.
        eval_settings = dataclasses.replace(eval_settings, repair_time_limit=budget.seconds)
    evaluator = Evaluator(graph, target, eval_settings)
    undecided = _decide_feasibility(evaluator, budget)
    bound = throughput_upper_bound(graph, target)
    own_executor = executor is None
    runner = make_executor(workers) if executor is None else executor
    rng = np.random.default_rng(seed)
    bar = _progress_bar(strategy, budget, progress, bound.throughput)
    # The main process keeps its evaluator too, for the final re-simulation and serial executors.
    keep_evaluator(evaluator)
    run: SearchRun | None = None
    try:
        runner.start(install_evaluator, (evaluator.spec,))
        run = SearchRun(
            graph,
            target,
            budget,
            seed,
            evaluator,
            runner,
            bar,
            options,
            stop_at=bound.throughput if stop_at_bound and bound.throughput > 0 else None,
        )
        interrupted = False
        try:
            strategy_fn(run, rng)
        except KeyboardInterrupt:
            # Ctrl-C ends the search, not the user's work: the best found so far is re-simulated
            # (in this process: the pool's workers got the signal too) and returned. With nothing
            # legal yet there is nothing to keep; a caller that loops over searches (a benchmark,
            # a compile) wants Ctrl-C to stop everything, so this is opt-in.
            if not keep_best_on_interrupt or not run.top:
                raise
            interrupted = True
            run.stopped = INTERRUPTED
        seconds = run.elapsed
        if bar is not None:
            bar(0, -1.0)  # close
            bar = None
        if interrupted:
            print(
                f"interrupted after {_count(run.evaluations, 'evaluation')}: re-simulating the "
                f"{_count(len(run.top), 'best placement')} found so far (Ctrl-C again to abort)",
                file=sys.stderr,
            )
        if not run.top and run.evaluations == 0 and not run.stopped and run.exhausted:
            raise ChiplexError(
                f"{strategy} spent its budget ({budget}) before its first evaluation of "
                f"{graph.name} on {target.name} (its setup took {seconds:.1f} s); give it more"
            )
        if not run.top:
            stopped = f" before the executor failed: {run.stopped}" if run.stopped else ""
            why = run.first_error or undecided
            raise ChiplexError(
                f"{strategy} found no legal placement of {graph.name} on {target.name} in "
                f"{_count(run.evaluations, 'evaluation')}{stopped}" + (f": {why}" if why else "")
            )
        if run.stopped:
            run.notes.append(
                f"stopped early after {_count(run.evaluations, 'evaluation')}, keeping the best "
                f"found so far: {run.stopped}"
            )
        chosen, final = run.final(microbatches)
        if run.reached_stop and run.remaining != 0:
            run.notes.append(
                _stopped_at_bound_note(run.evaluations, final.throughput, bound.throughput)
            )
    finally:
        if run is not None:
            run.close()
        if own_executor:
            runner.close()
        uninstall_evaluator(evaluator.key)
        if bar is not None:
            bar(0, -1.0)
    assert chosen.placement is not None
    return SearchResult(
        placement=chosen.placement,
        throughput=final.throughput,
        evaluations=run.evaluations,
        seconds=seconds,
        history=run.history,
        strategy=strategy,
        seed=seed,
        upper_bound=bound.throughput,
        upper_bound_reason=bound.reason,
        search_throughput=chosen.throughput,
        microbatches=microbatches,
        search_microbatches=eval_settings.microbatches,
        repaired=run.repaired,
        failed=run.failed,
        notes=tuple(run.notes),
        stopped=run.stopped,
        interrupted=interrupted,
    )


FEASIBILITY_TIME_LIMIT = 10.0
"""Seconds MiniZinc may spend, before a search, deciding whether any legal placement exists when the
repair heuristic finds none (at most half a seconds budget)."""


def _decide_feasibility(evaluator: Evaluator, budget: Budget) -> str:
    """Raise InfeasibleError, before any evaluation is spent, when no legal placement exists.

    `explain` (what `chiplex check` runs): the quick proofs (an op larger than a chip, total weights
    over total memory, pins against the pipeline order) for every graph size, then the repair
    heuristic's own placement, and only when it finds none MiniZinc, whose proof is narrowed to the
    rules, chips and bytes that conflict. Without this a search of an infeasible problem spent its
    whole budget on repairs that all failed (each one a MiniZinc call) and said only that it found
    nothing. Returns explain's "undecided: ..." message when the solver could not decide in time
    (the search then runs and may still find a placement), else ""."""
    from chiplex.targets.solver import InfeasibleError, SolverWarning, explain, forget_witness

    limit = FEASIBILITY_TIME_LIMIT
    if budget.seconds is not None:
        limit = min(limit, 0.5 * budget.seconds)
    messages = explain(evaluator.graph, evaluator.target, time_limit=limit, rules=evaluator.rules)
    forget_witness(evaluator.graph, evaluator.rules)  # deterministic repairs, serial or pool
    if messages and messages[0].startswith("undecided"):
        warnings.warn(
            f"search: {messages[0]}; searching anyway (`chiplex check --time-limit S` decides with "
            "more time)",
            SolverWarning,
            stacklevel=3,
        )
        return messages[0]
    if messages:
        raise InfeasibleError(messages)
    return ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _stopped_at_bound_note(evaluations: int, final: float, bound: float) -> str:
    stopped = f"stopped after {_count(evaluations, 'evaluation')}, at the upper bound"
    if final >= bound * (1 - BOUND_TOLERANCE):
        return f"{stopped}: no placement is more than {100 * BOUND_TOLERANCE:.4f}% faster than this one"
    # A reading still filling the pipeline can overshoot the steady state the bound is about.
    return (
        f"{stopped} in the search's simulation; the final one, with more micro-batches, is "
        f"{100 * (1 - final / bound):.2f}% below it"
    )


def progress_postfix(best: float, bound: float) -> str:
    """What the progress bar shows after its counts: the best so far and how far it is from the bound
    (the number the final summary calls "gap to bound"), so a user can tell when to stop."""
    if best <= 0:
        return "no legal placement yet"
    gap = f", {100 * (1 - best / bound):.2f}% below the bound" if bound > 0 else ""
    return f"best {best:,.1f} samples/s{gap}"


def _progress_bar(
    strategy: str, budget: Budget, enabled: bool, bound: float = 0.0
) -> Callable[[int, float], None] | None:
    """A callback (evaluations done, best so far) driving a tqdm bar; (0, -1) closes it."""
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(
        total=budget.evaluations,
        desc=strategy,
        unit="eval",
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
        disable=None,  # no bar when stderr is not a terminal: a log file gets no \r-redrawn lines
    )

    def update(done: int, best: float) -> None:
        if best < 0:
            # One-shot strategies and seconds budgets end before `total`: show what was done.
            if bar.total != bar.n:
                bar.total = bar.n
            bar.close()
            return
        bar.set_postfix_str(progress_postfix(best, bound), refresh=False)
        bar.update(done)

    return update
