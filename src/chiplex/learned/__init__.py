"""The learned placer (Xie et al., MLSys 2022): a graph policy proposes, the shared evaluator repairs and
simulates, PPO learns from the simulated throughput.

Layering: this package may import `chiplex.ir`, `chiplex.targets` and `chiplex.runtime_sim`; the passes
and the CLI import it (the `learned` search strategy is `chiplex.passes.learned`), never the reverse.

    features.py    graph + target -> GraphFeatures (tensors built once per problem), FEATURE_VERSION
    policy.py      PlacementPolicy (message passing, segment attention, chip-count-free head)
    ppo.py         PPOConfig, Problem, PPO (one update = sample, evaluate, clipped PPO epochs), train
    checkpoint.py  save_checkpoint / load_checkpoint with a JSON header
"""

from chiplex.learned.checkpoint import (
    Checkpoint,
    CheckpointHeader,
    load_checkpoint,
    save_checkpoint,
)
from chiplex.learned.features import FEATURE_VERSION, GraphFeatures, graph_features
from chiplex.learned.policy import (
    PlacementPolicy,
    PolicyConfig,
    new_policy,
    placements_from_actions,
)
from chiplex.learned.ppo import PPO, PPOConfig, Problem, UpdateStats, train

__all__ = [
    "FEATURE_VERSION",
    "PPO",
    "Checkpoint",
    "CheckpointHeader",
    "GraphFeatures",
    "PPOConfig",
    "PlacementPolicy",
    "PolicyConfig",
    "Problem",
    "UpdateStats",
    "graph_features",
    "load_checkpoint",
    "new_policy",
    "placements_from_actions",
    "save_checkpoint",
    "train",
]
