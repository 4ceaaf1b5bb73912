"""Which way does a policy move the cuts of a work-balanced anchor? Its mean action against stage loads.

    .venv/bin/python benchmarks/transfer_direction.py --checkpoint runs/all/checkpoint.pt

Zero-shot from the balanced anchor (`options={"anchor": "balanced"}`, transfer_weak.md) the shipped
policy's best of 16 samples equalled an untrained policy's on every case. This asks why, on held-out
cases where the balanced split is a weak start: the anchor is the work-balanced contiguous split
(`balanced_split`, repaired when memory requires), simulated; its chips' summed `op_work` over the mean
is what the policy's fourth anchor column reads (log stage load), so the features do tell it which side
of each boundary is heavier. For each policy (untrained, whose mean action is zero, and each
checkpoint) it reports:

    |mean|                the mean absolute mean action (the exploration std is 0.2)
    lighter / heavier     of the boundaries the mean action moves, how many move towards the lighter
                          stage (the heavier sheds ops: what balancing needs) and how many towards the
                          heavier
    mean action           the throughput of the mean action's placement (over the anchor's)
    best of 16            the anchor, the mean action and 14 samples, as zero-shot does
    same as untrained     samples whose placement equals the untrained policy's sample with that index
                          (the exploration noise is seeded alike; only the mean differs)

then the same table's rows for a hand-made mean action, `k x log stage load` on every op (the rule
"the heavier side of a boundary sheds ops", linear in one input column); and, as the reference for
which way is right, the boundary moves of --probe-samples (64) samples of an
untrained policy (seed + 1, so not the samples above), split by whether the sample beats, ties or loses
to the anchor.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from chiplex.learned.anchor import Anchor, balanced_split, make_anchor
from chiplex.learned.checkpoint import load_checkpoint
from chiplex.learned.features import graph_features
from chiplex.learned.policy import PlacementPolicy, PolicyConfig, new_policy
from chiplex.learned.ppo import PPO, graph_edges
from chiplex.learned.pretrain import shipped_checkpoint
from chiplex.runtime_sim.evaluate import EvalSettings, Evaluator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import RESULTS, load_case  # noqa: E402
from transfer_room import checkpoint_labels  # noqa: E402

CASES = (
    "resnet50@simba-6x6",
    "vit_b16@simba-6x6",
    "resnet50@held-out-mesh25",
    "vit_b16@held-out-ring16-dram",
)
SAMPLES = 16
LOAD_COLUMN = 3
"""The anchor feature column holding log(stage work / mean stage work) / 5 (`make_anchor`)."""
RULE_SCALES = (1.0, 2.0)
TIE = 1e-4
"""Relative throughput difference under which a sample ties its anchor."""


def stage_loads(anchor: Anchor, work: np.ndarray) -> np.ndarray:
    """Each anchor stage's summed op work over the mean (what the policy's load column reads)."""
    loads = np.bincount(anchor.placement, weights=work, minlength=anchor.stages)
    return loads / loads.mean()


def boundary_moves(anchor: Anchor, placement: np.ndarray, loads: np.ndarray) -> tuple[int, int]:
    """(boundaries moved towards the lighter stage, towards the heavier) by `placement` (a move of
    the anchor's cuts): boundary c moved back (stage c shed ops) is towards the lighter stage when
    stage c is the heavier of c and c+1."""
    lighter = heavier = 0
    for c in range(anchor.stages - 1):
        before = int(np.sum(anchor.placement <= c))
        after = int(np.sum(placement <= c))
        if before == after or loads[c] == loads[c + 1]:
            continue
        if (after < before) == bool(loads[c] > loads[c + 1]):
            lighter += 1
        else:
            heavier += 1
    return lighter, heavier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--checkpoint", type=Path, nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-samples", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "transfer_direction.md")
    args = parser.parse_args(argv)
    checkpoints = args.checkpoint or [shipped_checkpoint()]
    policies: list[tuple[str, PlacementPolicy]] = [
        ("untrained", new_policy(PolicyConfig(), seed=args.seed))
    ]
    policies += [
        (label, load_checkpoint(path).policy)
        for label, path in zip(checkpoint_labels(checkpoints), checkpoints, strict=True)
    ]
    torch.set_num_threads(1)
    started = time.perf_counter()
    lines = [
        "| case | balanced anchor | stage loads (min-max) | policy | mean action: abs mean | "
        "boundaries moved: to lighter / to heavier | mean action (/ anchor) | best of 16 (/ anchor) "
        "| same as untrained |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    reference = [
        f"| case | {args.probe_samples} untrained samples: beat the anchor | tie | lose |",
        "|---|---:|---:|---:|",
    ]
    for spec in args.cases:
        graph, target = load_case(spec)
        features = graph_features(graph, target)
        evaluator = Evaluator(graph, target, EvalSettings())
        judged = evaluator(balanced_split(features.work, features.num_chips))
        assert judged.placement is not None, f"{spec}: the balanced split has no legal repair"
        anchor = make_anchor(
            features.work, judged.placement, judged.hot_chip, edges=graph_edges(features)
        )
        loads = stage_loads(anchor, features.work)
        drawn: dict[str, list[bytes]] = {}
        for label, policy in policies:
            ppo = PPO(policy, seed=args.seed)
            actions, _, _, _ = ppo.sample(features, SAMPLES - 1, greedy=True, anchor=anchor)
            placements = list(anchor.placements(actions.numpy()))
            throughputs = [evaluator(p).throughput for p in placements]
            drawn[label] = [p.tobytes() for p in placements]
            lighter, heavier = boundary_moves(anchor, placements[0], loads)
            same = sum(a == b for a, b in zip(drawn[label], drawn["untrained"], strict=True))
            base = judged.throughput
            best = max(base, *throughputs)
            lines.append(
                f"| {spec} | {base:,.1f} | {loads.min():.2f}-{loads.max():.2f} | {label} | "
                f"{float(actions[0].abs().mean()):.2f} | {lighter} / {heavier} | "
                f"{throughputs[0]:,.1f} ({throughputs[0] / base:.3f}) | {best:,.1f} "
                f"({best / base:.3f}) | {same} of {SAMPLES - 1} |"
            )
            print(lines[-1], flush=True)
        # The rule the features allow, as a hand-made mean action (no network): every op's action
        # is k x its stage's log load (the anchor's fourth column), so each boundary moves towards
        # the lighter of its two stages. A reference for what a policy could learn, not a policy.
        log_load = anchor.features[:, LOAD_COLUMN].numpy().astype(np.float64) * 5
        for k in RULE_SCALES:
            placement = anchor.placements((k * log_load)[None, :])[0]
            throughput = evaluator(placement).throughput
            lighter, heavier = boundary_moves(anchor, placement, loads)
            lines.append(
                f"| {spec} | {judged.throughput:,.1f} | {loads.min():.2f}-{loads.max():.2f} | "
                f"rule: {k:g} x log stage load | {float(np.abs(k * log_load).mean()):.2f} | "
                f"{lighter} / {heavier} | {throughput:,.1f} ({throughput / judged.throughput:.3f}) "
                "| - | - |"
            )
            print(lines[-1], flush=True)
        ppo = PPO(new_policy(PolicyConfig(), seed=args.seed + 1), seed=args.seed + 1)
        actions, _, _, _ = ppo.sample(features, args.probe_samples, anchor=anchor)
        tally = {"beat": [0, 0, 0], "tie": [0, 0, 0], "lose": [0, 0, 0]}
        for placement in anchor.placements(actions.numpy()):
            ratio = evaluator(placement).throughput / judged.throughput
            kind = "beat" if ratio > 1 + TIE else "lose" if ratio < 1 - TIE else "tie"
            lighter, heavier = boundary_moves(anchor, placement, loads)
            tally[kind][0] += 1
            tally[kind][1] += lighter
            tally[kind][2] += heavier
        reference.append(
            f"| {spec} | "
            + " | ".join(
                f"{count} samples: {lighter} to lighter / {heavier} to heavier"
                for count, lighter, heavier in tally.values()
            )
            + " |"
        )
        print(reference[-1], flush=True)
    command = "python benchmarks/transfer_direction.py " + " ".join(
        map(shlex.quote, argv if argv is not None else sys.argv[1:])
    )
    args.out.write_text(
        "# Which way does a policy move the cuts of a work-balanced anchor?\n\n"
        f"Made by `{command.strip()}` in {(time.perf_counter() - started) / 60:.1f} min on "
        f"{platform.machine()}, seed {args.seed}; checkpoints "
        f"{', '.join(f'`{c}`' for c in checkpoints)}. Simulated samples/s.\n\n"
        + "\n".join(lines)
        + "\n\nWhich way is right (boundaries moved by samples of an untrained policy, by outcome):\n\n"
        + "\n".join(reference)
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
