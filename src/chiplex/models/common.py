"""Helpers shared by the zoo's model files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block without disturbing the caller's random state.

    The zoo's weights are random; seeding makes every factory call return the same model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def parameter_count(module: torch.nn.Module) -> int:
    """Distinct parameters (tied weights count once, as `module.parameters()` yields them once)."""
    return sum(p.numel() for p in module.parameters())
