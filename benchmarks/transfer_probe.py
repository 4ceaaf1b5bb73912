"""Do pre-trained weights carry knowledge? Zero-shot proposals of checkpoints against an untrained policy.

    .venv/bin/python benchmarks/transfer_probe.py --checkpoint runs/a/checkpoint.pt runs/b/checkpoint.pt

For each held-out model x module (never seen in training) and each anchoring, every policy (an untrained
one with --seed, and each checkpoint) gets the same zero-shot procedure as `place{strategy=learned}`: its
mean action first, then samples around the anchor (`PPO.sample`, seeded alike), all repaired and
simulated; the table gives the best of the first S samples over the anchor's throughput (1.000: no
better than the anchor), the mean over the anchorings.

Anchorings: `dp+greedy` is the better of dp's and greedy's placements (what zero-shot use faces; often
nothing within an action's reach beats it), `perturbed-k` is dp's placement with one or two boundaries
moved at random (`chiplex.learned.pretrain.perturb_placement`, seeded with k): there the way back is an
improving move, and a policy that learned which way boundaries should move finds it with fewer samples.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from chiplex.learned.checkpoint import load_checkpoint
from chiplex.learned.features import graph_features
from chiplex.learned.policy import PlacementPolicy, PolicyConfig, new_policy
from chiplex.learned.ppo import PPO, PPOConfig, Problem
from chiplex.learned.pretrain import perturb_placement, shipped_checkpoint
from chiplex.passes.learned import anchor_candidates
from chiplex.runtime_sim.evaluate import EvalSettings, Evaluator
from chiplex.targets.cost import throughput_upper_bound

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import RESULTS, load_case  # noqa: E402

CASES = (
    "bert_base@held-out-ring16",
    "vit_b16@held-out-ring16",
    "resnet50@held-out-mesh25",
    "gpt2_medium@simba-6x6",
    "resnet50@simba-6x6",
)


def best_ratios(
    policy: PlacementPolicy,
    problem_args: tuple,
    anchors: list[np.ndarray],
    sizes: list[int],
    seed: int,
) -> list[float]:
    """Best sample throughput over the anchor's among the first S zero-shot samples, for S in sizes."""
    features, upper, evaluate = problem_args
    problem = Problem(features, upper, evaluate, anchors)
    ppo = PPO(policy, PPOConfig(), seed=seed)
    ppo.prepare(problem)
    anchor = problem.state.anchor
    assert anchor is not None and problem.state.throughput > 0
    actions, _, _, _ = ppo.sample(features, max(sizes), greedy=True, anchor=anchor)
    results = evaluate(list(anchor.placements(actions.numpy())))
    throughput = np.array([r.throughput for r in results])
    return [float(throughput[:s].max() / problem.state.throughput) for s in sizes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, nargs="*", default=None)
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--perturbed", type=int, default=6, help="perturbed anchorings per case")
    parser.add_argument(
        "--samples", default="1,16,50", help="sample counts to report (1: the mean action)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "transfer_probe.md")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.samples.split(",")]
    checkpoints = args.checkpoint if args.checkpoint else [shipped_checkpoint()]
    torch.set_num_threads(1)
    started = time.perf_counter()
    policies: dict[str, PlacementPolicy] = {"untrained": new_policy(PolicyConfig(), seed=args.seed)}
    for path in checkpoints:
        policies[str(path) if args.checkpoint else "shipped"] = load_checkpoint(path).policy
    rows: list[str] = []
    totals: dict[tuple[str, str], list[list[float]]] = {}
    for spec in args.cases:
        graph, target = load_case(spec)
        evaluator = Evaluator(graph, target, EvalSettings(repair_time_limit=1.0))
        features = graph_features(graph, target)
        upper = throughput_upper_bound(graph, target).throughput

        def evaluate(candidates: list[np.ndarray], judge: Evaluator = evaluator) -> list:
            return [judge(c) for c in candidates]

        heuristic = anchor_candidates(graph, target)
        anchorings = {"dp+greedy": heuristic}
        for k in range(args.perturbed):
            rng = np.random.default_rng((args.seed, k))
            anchorings[f"perturbed-{k}"] = [perturb_placement(features, heuristic[0], rng)]
        for anchoring, anchors in anchorings.items():
            kind = "dp+greedy" if anchoring == "dp+greedy" else "perturbed"
            cells = []
            for name, policy in policies.items():
                ratios = best_ratios(policy, (features, upper, evaluate), anchors, sizes, args.seed)
                totals.setdefault((kind, name), []).append(ratios)
                cells.append(" / ".join(f"{r:.4f}" for r in ratios))
            rows.append(f"| {spec} | {anchoring} | " + " | ".join(cells) + " |")
            print(rows[-1], file=sys.stderr, flush=True)
    names = list(policies)
    header = (
        "| case | anchoring | "
        + " | ".join(f"{n} @{'/@'.join(map(str, sizes))}" for n in names)
        + " |\n|---|---|"
        + "---:|" * len(names)
    )
    summary = ["| anchoring | policy | mean best / anchor | cases where it beats untrained |"]
    summary.append("|---|---|---|---|")
    for kind in ("dp+greedy", "perturbed"):
        base = np.array(totals[(kind, "untrained")])
        for name in names:
            mine = np.array(totals[(kind, name)])
            wins = " / ".join(
                f"{int((mine[:, i] > base[:, i] + 1e-9).sum())}+ {int((mine[:, i] < base[:, i] - 1e-9).sum())}-"
                for i in range(len(sizes))
            )
            means = " / ".join(f"{m:.4f}" for m in mine.mean(0))
            summary.append(f"| {kind} | {name} | {means} | {wins} (of {len(mine)}) |")
    elapsed = time.perf_counter() - started
    text = (
        "# Transfer probe: do pre-trained weights propose better moves than an untrained policy?\n\n"
        f"Made by `python benchmarks/transfer_probe.py {' '.join(argv or sys.argv[1:])}` in "
        f"{elapsed / 60:.1f} min on {platform.machine()} (one process), seed {args.seed}. "
        f"Best sample throughput over the anchor's among the first {' / '.join(map(str, sizes))} "
        "zero-shot samples (the policy's mean action first); wins/losses against the untrained policy "
        "per sample count.\n\n"
        + "\n".join(summary)
        + "\n\n"
        + header
        + "\n"
        + "\n".join(rows)
        + "\n"
    )
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
