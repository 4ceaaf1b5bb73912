"""Speed and memory of the learned placer's policy: forward, forward + backward, one PPO update.

    .venv/bin/python benchmarks/learned_speed.py
    .venv/bin/python benchmarks/learned_speed.py --ops 10000 20000 --repeats 5

Graphs: BERT-base (`examples/models/bert_base.mlir`, 348 ops) on tpu-ring8, and BERT-like stacks of
`--ops` ops (`chiplex.testing.transformer_graph`, built from arrays) on simba-6x6. Times are the median
of `--repeats` runs on one torch thread (what the `learned` strategy uses) after one warm-up. "PPO
update" is `PPO.step` with a judge that answers instantly: the learner's own time per update of
`PPOConfig().samples_per_update` samples (one forward pass shared by the sampling and the first
minibatch, the anchor's placements, `update_epochs` x `num_minibatches` backward passes with a forward
pass before each but the first, and re-anchoring), i.e. the overhead
the evaluations do not hide. "peak RSS" is the process's peak resident memory after the row (it only grows), an upper bound
on what the row needed. Goals (issue 10): BERT-base forward < 50 ms; 10,000 ops forward < 2 s and
< 2 GB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from chiplex.ir.graph import Graph, graph_from_module
from chiplex.ir.parse import load_module
from chiplex.learned import PPO, PPOConfig, Problem, graph_features, new_policy
from chiplex.runtime_sim.evaluate import Evaluation
from chiplex.targets.target import Target, load_target
from chiplex.testing import transformer_graph

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(name: str, graph: Graph, target: Target, repeats: int) -> str:
    started = time.perf_counter()
    features = graph_features(graph, target)
    feature_s = time.perf_counter() - started
    policy = new_policy(seed=0)

    def forward() -> None:
        with torch.no_grad():
            policy(features)

    def forward_backward() -> None:
        out = policy(features)
        (out.mean.sum() + out.value).backward()
        policy.zero_grad()

    def instant(placements: list[np.ndarray]) -> list[Evaluation]:
        return [Evaluation(p, 1.0, False) for p in placements]

    ppo = PPO(policy, seed=0)
    problem = Problem(features, 1.0, instant)
    fwd = median_seconds(forward, repeats)
    fwd_bwd = median_seconds(forward_backward, repeats)
    update = median_seconds(lambda: ppo.step(problem), max(1, repeats // 2))
    return (
        f"| {name} | {graph.num_nodes:,} | {graph.num_edges:,} | {target.name} | "
        f"{1000 * feature_s:,.1f} | {1000 * fwd:,.1f} | {1000 * fwd_bwd:,.1f} | "
        f"{1000 * update:,.0f} | {peak_rss_mib():,.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; median of {args.repeats} runs\n")
    print(
        "| graph | ops | edges | target | features (ms) | forward (ms) | forward + backward (ms) "
        f"| PPO update, {PPOConfig().samples_per_update} samples (ms) | peak RSS (MiB) |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    bert = graph_from_module(load_module(ROOT / "examples" / "models" / "bert_base.mlir"))
    print(measure("bert_base", bert, load_target("tpu-ring8"), args.repeats), flush=True)
    for ops in args.ops:
        graph = transformer_graph(ops, seed=0)
        print(measure(f"transformer_graph({ops})", graph, load_target("simba-6x6"), args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
