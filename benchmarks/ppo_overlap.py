"""PPO's own time in a learned search, with and without overlapping each update with the next batch.

    .venv/bin/python benchmarks/ppo_overlap.py
    .venv/bin/python benchmarks/ppo_overlap.py --cases bert_base@tpu-ring8-2xsram resnet50@tpu-ring4 --seeds 0 1 2

For each case and seed, `learned` searches from scratch with `--evaluations` evaluations on one pool of
`--workers` workers, once with `overlap` off (the learner and the judge take turns) and once on (each
update runs while the workers judge the next batch; `chiplex.learned.ppo.train`), the two runs of a
seed back to back so that they meet the same load. Prints a markdown table: the search's wall time,
the learner's exposed time (the loop's wall time while no batch is on the executor, the part of PPO the
workers wait for) and its share of the search loop, and whether both runs found the same throughput.
The goal (issue 10) is that PPO's own time stays under 20% of a search's wall time; the cases that
stress it are the ones with the cheapest evaluations (BERT-base / tpu-ring8-2xsram, ResNet-50 /
tpu-ring4). The two modes draw from weights of different ages, so their placements may differ.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from pathlib import Path

from chiplex.ir.graph import Graph, graph_from_module
from chiplex.ir.parse import load_module
from chiplex.passes.search import Budget, SearchResult, search
from chiplex.runtime_sim.evaluate import make_executor
from chiplex.targets.target import load_target

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ("bert_base@tpu-ring8-2xsram", "resnet50@tpu-ring4", "bert_base@tpu-ring8")
OWN = re.compile(r"PPO's own time ([\d.]+) s against ([\d.]+) s of evaluations \((\d+)%\)")


def load_graph(model: str) -> Graph:
    return graph_from_module(load_module(ROOT / "examples" / "models" / f"{model}.mlir"))


def own_time(result: SearchResult) -> tuple[float, float, int]:
    """(PPO's own seconds, evaluation seconds, own share in %) from the search's note."""
    for note in result.notes:
        found = OWN.search(note)
        if found:
            return float(found[1]), float(found[2]), int(found[3])
    raise SystemExit(f"no PPO timing in the notes of {result.strategy}: {result.notes}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL@TARGET")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--evaluations", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    rows = [
        "| case | seed | search s, turns | search s, overlap | own s (share), turns | "
        "own s (share), overlap | same throughput |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    walls: dict[bool, list[float]] = {False: [], True: []}
    shares: dict[bool, list[int]] = {False: [], True: []}
    executor = make_executor(args.workers)
    try:
        for spec in args.cases:
            model, _, target_name = spec.partition("@")
            graph, target = load_graph(model), load_target(target_name)
            # Warm-up: torch's first use and the process's first dp are not the learner's cost.
            search(graph, target, "learned", Budget(evaluations=8), 0, executor=executor)
            for seed in args.seeds:
                results = {}
                for overlap in (False, True):
                    results[overlap] = search(
                        graph,
                        target,
                        "learned",
                        Budget(evaluations=args.evaluations),
                        seed,
                        executor=executor,
                        options={"overlap": overlap},
                        stop_at_bound=False,  # the learner's share of a whole search
                    )
                timing = {overlap: own_time(r) for overlap, r in results.items()}
                for overlap, result in results.items():
                    walls[overlap].append(result.seconds)
                    shares[overlap].append(timing[overlap][2])
                same = results[False].throughput == results[True].throughput
                rows.append(
                    f"| {spec} | {seed} | {results[False].seconds:.2f} | "
                    f"{results[True].seconds:.2f} | {timing[False][0]:.2f} ({timing[False][2]}%) | "
                    f"{timing[True][0]:.2f} ({timing[True][2]}%) | {'yes' if same else 'no'} |"
                )
                print(rows[-1], file=sys.stderr, flush=True)
    finally:
        executor.close()
    print(f"load average after: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print("\n".join(rows))
    for overlap, label in ((False, "turns"), (True, "overlap")):
        print(
            f"\n{label}: search {statistics.mean(walls[overlap]):.2f} s on average, PPO's own time "
            f"{min(shares[overlap])}-{max(shares[overlap])}% of the search loop",
            end="",
        )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
