"""Evaluations on a Ray cluster: the executor protocol of `chiplex.runtime_sim.evaluate` over Ray actors.

    executor = RayExecutor(workers=8, address="ray://head:10001")   # or RAY_ADDRESS, or a local Ray
    executor.start(install_evaluator, (evaluator.spec,))
    results = executor.map(EvaluateTask(evaluator.key), candidates)   # input order
    executor.close()

`start` puts the initializer's arguments (the evaluator spec: graph, target, settings) into Ray's object
store once (`ray.put`) and creates one actor per worker; each actor resolves that one object and runs the
initializer once, so the evaluator is built once per worker and never shipped with a task. `map` cuts the
items into a few batches per worker (each batch is one actor call carrying only its candidate arrays, so
Ray's per-call overhead is paid once per batch), keeps exactly one batch in flight per actor, hands the
next batch to whichever actor is free, and puts the results back in input order.

Failures: a batch whose actor died (process killed, node lost) or did not answer within `task_timeout`
is retried on a fresh actor (created from the same object-store spec), a batch whose task raised is
retried as it is; after `max_retries` retries of one batch the map gives up with an `ExecutorError`
naming the batch and the last cause. Nothing waits without a deadline, so a map never hangs.
(`ray.util.ActorPool` keeps order too, but has no deadline and no way to replace a dead actor.)

Ray is imported only when an executor is started, so chiplex works without the `ray` extra installed.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from chiplex.errors import ChiplexError
from chiplex.runtime_sim.evaluate import ExecutorError, default_workers

T = TypeVar("T")
R = TypeVar("R")

RAY_ADDRESS_ENV = "RAY_ADDRESS"
"""Ray's own variable for the cluster to join; used when no address is given."""
BATCHES_PER_WORKER = 4
"""Batches each worker gets per `map`: enough that a fast worker takes a slow one's share, few enough
that Ray's per-call overhead is paid a few times per worker rather than once per item."""
DEFAULT_MAX_RETRIES = 2
DEFAULT_TASK_TIMEOUT = 600.0
"""Seconds one batch may take before its actor is presumed stuck (a BERT-base evaluation takes well
under a second; a repair that falls back to MiniZinc stops after `EvalSettings.repair_time_limit`)."""
DEFAULT_START_TIMEOUT = 180.0
"""Seconds the actors may take to start and build their evaluator (a cluster without free CPUs would
otherwise leave them pending forever)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the Ray head's port to accept a connection."""
POLL_SECONDS = 1.0
"""How often a waiting `map` checks its batches' deadlines."""


def ray_available() -> bool:
    """Whether the optional `ray` package (`pip install chiplex[ray]`) can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ChiplexError(
            "the ray executor needs Ray: pip install 'chiplex[ray]' (or pick --executor local)"
        ) from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at `address` (default `RAY_ADDRESS`), else start a local Ray with
    `num_cpus` CPUs (default one per CPU of this machine), quietly; nothing when Ray is already
    initialised in this process. Whether this call initialised Ray: then the caller's `ray.shutdown()`
    disconnects from the cluster (and stops the local Ray)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get(RAY_ADDRESS_ENV) or None
    quiet: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "include_dashboard": False,
    }
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
            return True

        ray.init(address="local", num_cpus=num_cpus or default_workers(), **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        if not address:
            raise ChiplexError(f"could not start a local Ray: {err}") from None
        raise ChiplexError(
            f"could not join the Ray cluster at {address}: {err} (a cluster with token "
            "authentication needs RAY_AUTH_MODE=token and its token here, see docs/scale-out.md)"
        ) from None
    return True


def _check_reachable(address: str) -> None:
    """Fail fast on a head that does not answer: `ray.init` retries an unreachable address for
    minutes, printing its own connection warnings."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise ChiplexError(
            f"cannot reach the Ray head at {address}: {err.strerror or err} (start one with "
            "`ray start --head`, see docs/scale-out.md)"
        ) from None


class _Worker:
    """One Ray actor: runs the initializer once when created, then batches of tasks."""

    def __init__(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        initializer(*initargs)

    def ready(self) -> int:
        return os.getpid()

    def run(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return [fn(item) for item in items]


_REMOTE_WORKER: Any = None


def _remote_worker() -> Any:
    """The actor class, declared to Ray once per process (declaring it needs Ray imported)."""
    global _REMOTE_WORKER
    if _REMOTE_WORKER is None:
        _REMOTE_WORKER = _import_ray().remote(_Worker)
    return _REMOTE_WORKER


@dataclass
class _Batch:
    index: int
    start: int
    items: list[Any]
    attempts: int = 0


class RayExecutor:
    """Runs tasks on Ray actors, one per worker, results in input order; see the module docstring.

    `address`: an existing cluster (`ray://host:10001` or `host:6379`, as `ray.init` takes it); default
    the `RAY_ADDRESS` environment variable, else a local Ray with `workers` CPUs is started for this
    executor and shut down by `close`. `workers`: actors (one CPU each); default one per CPU of the
    cluster (or of this machine for a local Ray). `batch_size`: items per actor call; default about
    `len(items) / (BATCHES_PER_WORKER * workers)`.
    """

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        *,
        batch_size: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        task_timeout: float = DEFAULT_TASK_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ChiplexError(f"workers must be >= 1, got {workers}")
        if batch_size is not None and batch_size < 1:
            raise ChiplexError(f"batch size must be >= 1, got {batch_size}")
        if max_retries < 0:
            raise ChiplexError(f"max retries must be >= 0, got {max_retries}")
        self._requested_workers = workers
        self.workers = workers or 1
        self.address = address or os.environ.get(RAY_ADDRESS_ENV) or None
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.task_timeout = task_timeout
        self.start_timeout = start_timeout
        self._ray: Any = None
        self._started_ray = False
        self._actors: list[Any] = []
        self._init: tuple[Callable[..., None], Any] | None = None
        # Ray takes 10-20 s to start and its workers a few more: say what the wait is for.
        self._progress = progress or (lambda line: None)

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> Any:
        """Ray, initialised: the given cluster, an already initialised Ray, or a local one we start."""
        if self._ray is not None:
            return self._ray
        ray = _import_ray()
        if not ray.is_initialized():
            self._progress(
                f"joining the Ray cluster at {self.address}"
                if self.address
                else f"starting a local Ray with {self._requested_workers or default_workers()} CPUs"
            )
        self._started_ray = init_ray(self.address, self._requested_workers)
        if self._requested_workers is None:
            self.workers = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self._ray = ray
        return ray

    # -- the protocol ---------------------------------------------------------------------------
    def start(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        ray = self._connect()
        self._kill_actors()
        # Into the object store once: every actor (and every replacement) reads this one copy.
        self._init = (initializer, ray.put(initargs))
        self._actors = [self._new_actor() for _ in range(self.workers)]
        started = time.monotonic()
        try:
            ray.get([actor.ready.remote() for actor in self._actors], timeout=self.start_timeout)
            self._progress(
                f"{self.workers} Ray worker{'s' if self.workers > 1 else ''} ready "
                f"in {time.monotonic() - started:.1f} s"
            )
        except ray.exceptions.GetTimeoutError:
            free = ray.available_resources().get("CPU", 0)
            self._kill_actors()
            raise ExecutorError(
                f"Ray did not start {self.workers} workers within {self.start_timeout:g} s "
                f"({free:g} CPUs free in the cluster): ask for fewer --workers"
            ) from None
        except ray.exceptions.RayError as err:
            self._kill_actors()
            raise ExecutorError(f"a Ray worker failed to start: {_cause(err)}") from None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self._init is None or self._ray is None:
            raise RuntimeError("RayExecutor.map before start()")
        ray = self._ray
        items = list(items)
        if not items:
            return []
        size = self.batch_size or max(1, -(-len(items) // (BATCHES_PER_WORKER * self.workers)))
        todo = deque(
            _Batch(i, start, items[start : start + size])
            for i, start in enumerate(range(0, len(items), size))
        )
        results: list[list[R] | None] = [None] * len(todo)
        idle = deque(range(len(self._actors)))
        running: dict[Any, tuple[_Batch, int, float]] = {}  # ref -> (batch, actor slot, deadline)
        try:
            while todo or running:
                while todo and idle:
                    batch, slot = todo.popleft(), idle.popleft()
                    ref = self._actors[slot].run.remote(fn, batch.items)
                    running[ref] = (batch, slot, time.monotonic() + self.task_timeout)
                ready, rest = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                if ready and rest:
                    # Collect every batch already done in one call, not one wait per batch.
                    done, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                    ready += done
                for ref in ready:
                    batch, slot, _deadline = running.pop(ref)
                    try:
                        results[batch.index] = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        # The task raised; its actor is alive and keeps its evaluator.
                        self._retry(batch, f"the task raised {_cause(err)}", todo)
                    except ray.exceptions.RayError as err:
                        self._replace_actor(slot)
                        self._retry(batch, f"its worker died ({_cause(err)})", todo)
                    idle.append(slot)
                now = time.monotonic()
                for ref, (batch, slot, deadline) in list(running.items()):
                    if now > deadline:
                        del running[ref]
                        self._replace_actor(slot)
                        self._retry(batch, f"no result within {self.task_timeout:g} s", todo)
                        idle.append(slot)
        except ExecutorError:
            # Leave no batch running behind the error: its actors would stay busy for the next map.
            for _batch, slot, _deadline in running.values():
                self._replace_actor(slot)
            raise
        return [result for batch in results if batch is not None for result in batch]

    def close(self) -> None:
        self._kill_actors()
        self._init = None
        if self._started_ray and self._ray is not None:
            self._ray.shutdown()
        self._started_ray = False
        self._ray = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- failures -------------------------------------------------------------------------------
    def _retry(self, batch: _Batch, why: str, todo: deque[_Batch]) -> None:
        batch.attempts += 1
        if batch.attempts > self.max_retries:
            end = batch.start + len(batch.items) - 1
            raise ExecutorError(
                f"Ray batch {batch.index} (items {batch.start}..{end}) failed "
                f"{batch.attempts} times; last: {why}"
            )
        todo.appendleft(batch)

    def _new_actor(self) -> Any:
        assert self._init is not None
        initializer, initargs_ref = self._init
        # One CPU per actor: Ray places `workers` of them on the cluster's free CPUs.
        return _remote_worker().options(num_cpus=1).remote(initializer, initargs_ref)

    def _replace_actor(self, slot: int) -> None:
        """A fresh actor in `slot` (the old one is dead or stuck); it rebuilds the evaluator from the
        object-store copy."""
        self._ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._new_actor()

    def _kill_actors(self) -> None:
        if self._ray is not None:
            for actor in self._actors:
                self._ray.kill(actor, no_restart=True)
        self._actors = []


def _cause(err: BaseException) -> str:
    """The underlying error of a Ray exception, in one line: the task's own exception when it raised,
    else the last line of Ray's message (which ends with the root cause), without terminal colours."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".strip().splitlines()[0]
    lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
