"""The Ray executor: same results as serial and the local pool, input order, bounded retries, no hangs,
and a search that keeps its best placement when a worker dies. One local Ray (2 CPUs) for the module."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.passes.search import RANDOM_BATCH, Budget, SearchResult, search
from chiplex.runtime_sim.evaluate import (
    Executor,
    ExecutorError,
    LocalPoolExecutor,
    make_executor,
)
from chiplex.runtime_sim.ray_executor import RayExecutor, ray_available
from chiplex.targets.legality import is_legal
from chiplex.targets.target import Target

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"
needs_ray = pytest.mark.skipif(
    not ray_available(), reason="ray is not installed (scripts/setup.sh installs the [ray] extra)"
)


# -- tasks the workers run (module level, so they pickle by reference) -------------------------------
def nothing_to_install() -> None:
    """An initializer for executors whose tasks need no shared state."""


def square(x: int) -> int:
    return x * x


@dataclass(frozen=True)
class ExitOnce:
    """Kills its worker process the first time it runs (a marker file remembers), then squares."""

    marker: str

    def __call__(self, x: int) -> int:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return x * x


@dataclass(frozen=True)
class ExitOn:
    """Runs `task`, except that it kills its worker process on the item whose bytes are `doomed`."""

    task: Callable[[Any], Any]
    doomed: bytes

    def __call__(self, item: Any) -> Any:
        if np.asarray(item).tobytes() == self.doomed:
            os._exit(1)
        return self.task(item)


def sleep_forever(x: int) -> int:
    time.sleep(600)
    return x


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the whole module; every RayExecutor below joins it."""
    if not ray_available():
        pytest.skip("ray is not installed (scripts/setup.sh installs the [ray] extra)")
    import ray

    # The workers cannot import this test module: ship its tasks by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def medium_case() -> tuple[Graph, Target]:
    from chiplex.testing import target_for, transformer_graph

    graph = transformer_graph(60, seed=2)
    return graph, target_for(graph, 4, slack=1.1)


def same(a: SearchResult, b: SearchResult) -> bool:
    return (
        np.array_equal(a.placement, b.placement)
        and a.throughput == b.throughput
        and a.evaluations == b.evaluations
        and [p.best_throughput for p in a.history] == [p.best_throughput for p in b.history]
    )


# -- identical results ---------------------------------------------------------------------------------
@needs_ray
def test_ray_serial_and_pool_give_identical_results(
    local_ray: None, medium_case: tuple[Graph, Target]
) -> None:
    graph, target = medium_case
    with RayExecutor(2) as on_ray, LocalPoolExecutor(2) as pool:
        assert isinstance(on_ray, Executor)
        for strategy in ("random", "anneal"):
            serial = search(graph, target, strategy, Budget(evaluations=40), seed=5)
            pooled = search(graph, target, strategy, Budget(evaluations=40), seed=5, executor=pool)
            distributed = search(
                graph, target, strategy, Budget(evaluations=40), seed=5, executor=on_ray
            )
            assert same(serial, pooled) and same(serial, distributed), strategy
            assert not distributed.stopped


@needs_ray
def test_map_keeps_input_order_across_batches(local_ray: None) -> None:
    with RayExecutor(2, batch_size=3) as executor:
        executor.start(nothing_to_install, ())
        assert executor.map(square, list(range(25))) == [x * x for x in range(25)]
        assert executor.map(square, []) == []


# -- failures ------------------------------------------------------------------------------------------
@needs_ray
def test_a_worker_that_dies_once_is_replaced_and_its_batch_retried(
    local_ray: None, tmp_path: Path
) -> None:
    with RayExecutor(2, batch_size=2, max_retries=1) as executor:
        executor.start(nothing_to_install, ())
        task = ExitOnce(str(tmp_path / "died-once"))
        assert executor.map(task, list(range(8))) == [x * x for x in range(8)]
        assert (tmp_path / "died-once").exists()


@needs_ray
def test_a_task_that_always_kills_its_worker_is_a_clear_error(local_ray: None) -> None:
    with RayExecutor(2, batch_size=1, max_retries=1) as executor:
        executor.start(nothing_to_install, ())
        doomed = np.int64(5).tobytes()
        items = [np.int64(x) for x in range(8)]
        with pytest.raises(
            ExecutorError, match=r"items 5\.\.5\) failed 2 times; last: its worker died"
        ):
            executor.map(ExitOn(square, doomed), items)
        # The executor recovers: the next map runs on fresh workers.
        assert executor.map(square, [1, 2, 3]) == [1, 4, 9]


@needs_ray
def test_a_stuck_task_times_out_instead_of_hanging(local_ray: None) -> None:
    with RayExecutor(1, max_retries=0, task_timeout=1.0) as executor:
        executor.start(nothing_to_install, ())
        with pytest.raises(ExecutorError, match="failed 1 times; last: no result within 1 s"):
            executor.map(sleep_forever, [1])


@needs_ray
def test_more_workers_than_the_cluster_has_cpus_fail_at_start(local_ray: None) -> None:
    executor = RayExecutor(3, start_timeout=2.0)  # the module's Ray has 2 CPUs
    with pytest.raises(ExecutorError, match="did not start 3 workers within 2 s"):
        executor.start(nothing_to_install, ())
    executor.close()


class KillsAWorkerOnMap:
    """An executor that forwards to `inner`, except that on its `fatal_map`-th map the first item's
    task kills its worker process every time it runs (so the retries cannot save it)."""

    def __init__(self, inner: Executor, fatal_map: int) -> None:
        self.inner = inner
        self.workers = inner.workers
        self.fatal_map = fatal_map
        self.maps = 0

    def start(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self.inner.start(initializer, initargs)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        self.maps += 1
        if self.maps == self.fatal_map:
            fn = ExitOn(fn, np.asarray(items[0]).tobytes())
        return self.inner.map(fn, items)

    def close(self) -> None:
        self.inner.close()


@needs_ray
def test_a_search_keeps_its_best_placement_when_a_worker_dies(
    local_ray: None, medium_case: tuple[Graph, Target]
) -> None:
    graph, target = medium_case
    with RayExecutor(2, max_retries=1) as on_ray:
        dying = KillsAWorkerOnMap(on_ray, fatal_map=3)
        result = search(graph, target, "random", Budget(evaluations=80), seed=3, executor=dying)
    # Two batches were judged before the third killed its worker (twice: once plus one retry).
    assert result.evaluations == 2 * RANDOM_BATCH
    assert "worker died" in result.stopped and "failed 2 times" in result.stopped
    assert any(note.startswith("stopped early after 32 evaluations") for note in result.notes)
    assert is_legal(graph, target, result.placement) and result.throughput > 0
    # random's batches do not depend on the budget: the kept best is what a search that only had
    # those two batches finds.
    two_batches = search(graph, target, "random", Budget(evaluations=2 * RANDOM_BATCH), seed=3)
    assert np.array_equal(result.placement, two_batches.placement)
    assert result.throughput == two_batches.throughput


@needs_ray
def test_a_worker_failure_before_any_legal_placement_is_an_error(
    local_ray: None, medium_case: tuple[Graph, Target]
) -> None:
    graph, target = medium_case
    with RayExecutor(2, max_retries=0) as on_ray:
        dying = KillsAWorkerOnMap(on_ray, fatal_map=1)
        with pytest.raises(ChiplexError, match="no legal placement .* before the executor failed"):
            search(graph, target, "random", Budget(evaluations=40), seed=3, executor=dying)


def test_a_dead_local_pool_worker_is_an_executor_error(medium_case: tuple[Graph, Target]) -> None:
    with LocalPoolExecutor(2) as pool:
        pool.start(nothing_to_install, ())
        with pytest.raises(ExecutorError, match="local pool worker died"):
            pool.map(ExitOn(square, np.int64(1).tobytes()), [np.int64(x) for x in range(4)])


# -- choosing an executor --------------------------------------------------------------------------------
def test_make_executor_kinds_and_bad_combinations() -> None:
    assert type(make_executor(1)).__name__ == "SerialExecutor"
    assert type(make_executor(None, "serial")).__name__ == "SerialExecutor"
    assert isinstance(make_executor(1, "local"), LocalPoolExecutor)
    # Built without touching Ray: Ray is imported (and a cluster joined) by start().
    ray_executor = make_executor(3, "ray", "127.0.0.1:6379")
    assert isinstance(ray_executor, RayExecutor) and ray_executor.workers == 3
    assert ray_executor.address == "127.0.0.1:6379"
    with pytest.raises(ChiplexError, match="unknown executor 'dask'"):
        make_executor(2, "dask")
    with pytest.raises(ChiplexError, match="needs the ray executor"):
        make_executor(2, "local", "127.0.0.1:6379")
    with pytest.raises(ChiplexError, match="serial executor runs 1 worker"):
        make_executor(4, "serial")


def test_ray_address_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert RayExecutor(2).address == "10.0.0.1:6379"
    assert RayExecutor(2, "head:6379").address == "head:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayExecutor(2).address is None


# -- the command line ------------------------------------------------------------------------------------
@needs_ray
def test_cli_search_on_ray(local_ray: None, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", str(MLP), "--target", "tpu-ring8", "--strategy", "random", "--budget", "16"]
    assert main([*args, "--executor", "ray", "--workers", "2", "--no-progress"]) == 0
    on_ray, notes = capsys.readouterr()
    # Ray's start-up is the slow part of a small search: the user is told what the wait is for.
    assert "note: 2 Ray workers ready in " in notes
    assert main([*args, "--executor", "serial", "--no-progress"]) == 0
    serial = capsys.readouterr().out
    assert "gap to bound" in on_ray
    # Same numbers on both executors (the effort line holds wall time, so compare the rest).
    numbers = re.compile(r"(?:throughput|upper bound|gap to bound|chips used) .*")
    assert numbers.findall(on_ray) == numbers.findall(serial)
    assert len(numbers.findall(on_ray)) == 4


def test_cli_rejects_a_ray_address_for_another_executor(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", str(MLP), "--budget", "3", "--executor", "local", "--ray-address", "h:6379"]
    assert main(args) == 1
    assert "needs the ray executor" in capsys.readouterr().err


@needs_ray
def test_an_unreachable_head_fails_fast_with_a_clear_error() -> None:
    from chiplex.runtime_sim.ray_executor import _check_reachable

    with pytest.raises(
        ChiplexError, match=r"cannot reach the Ray head at 127\.0\.0\.1:1: .*ray start"
    ):
        _check_reachable("127.0.0.1:1")
    _check_reachable("auto")  # resolved by Ray itself


def test_ray_is_imported_only_when_an_executor_starts() -> None:
    import subprocess

    code = (
        "import sys\n"
        "import chiplex.cli, chiplex.passes.search\n"
        "from chiplex.runtime_sim.evaluate import make_executor\n"
        "make_executor(2, 'ray')\n"
        "assert 'ray' not in sys.modules, 'ray imported too early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cli_executor_choices_match_the_library() -> None:
    from chiplex.commands._args import EXECUTOR_CHOICES
    from chiplex.runtime_sim.evaluate import EXECUTOR_KINDS

    assert EXECUTOR_CHOICES == EXECUTOR_KINDS
