"""What drawing examples from `chiplex.testing`'s hypothesis strategies costs, in CPU seconds.

    .venv/bin/python benchmarks/testing_kit_speed.py [--examples 100]

Each row draws `--examples` derandomized examples (the same ones every run) through `@given` with the
health checks off, and reports the process CPU time; hypothesis' too_slow health check trips when the
first examples take about a second of wall time, so a row far below 1 s per 10 examples leaves room on
a loaded machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.targets.target import load_target
from chiplex.testing import graph_and_target, graphs_for, nn_graphs, placements


def _pairs_with_candidates(max_ops: int) -> st.SearchStrategy:
    return graph_and_target(max_ops=max_ops, max_chips=16).flatmap(
        lambda case: st.tuples(st.just(case), placements(*case))
    )


def cases() -> list[tuple[str, Callable[[], st.SearchStrategy]]]:
    simba = load_target("simba-6x6")
    ring = load_target("tpu-ring8")
    return [
        ("nn_graphs(max_ops=40)", lambda: nn_graphs(max_ops=40)),
        ("graph_and_target(max_ops=30, max_chips=6)", lambda: graph_and_target()),
        (
            "graph_and_target(max_ops=150, max_chips=16)",
            lambda: graph_and_target(max_ops=150, max_chips=16),
        ),
        ("graph_and_target(150, 16) + placements", lambda: _pairs_with_candidates(150)),
        ("graphs_for(tpu-ring8, max_ops=30)", lambda: graphs_for(ring)),
        ("graphs_for(simba-6x6, max_ops=300)", lambda: graphs_for(simba, max_ops=300)),
    ]


def cpu_seconds(strategy: st.SearchStrategy, examples: int) -> float:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(_example: object) -> None:
        pass

    start = time.process_time()
    draw()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    print(f"| strategy | CPU s per {args.examples} examples |")
    print("|---|---|")
    for name, make in cases():
        print(f"| `{name}` | {cpu_seconds(make(), args.examples):.2f} |", flush=True)


if __name__ == "__main__":
    main()
