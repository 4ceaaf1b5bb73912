"""Property-based checks of the PyTorch importer against torch, and the regressions its campaigns
found.

The property: a random small module (tests/importfuzz/generator.py: linear, convolutions, norms,
activations, pooling, shape ops, attention, masking, reductions, broadcasting arithmetic, embedding,
in random dtypes) imports, and the interpreted IR matches torch element by element; or the importer
refuses with a report naming each ATen op and the line of the module that used it. The default run
is derandomised (tests/conftest.py) and bounded; long campaigns: `python scripts/import_fuzz.py`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from importfuzz.generator import Case, Drawn, Step, cases, check, element_errors
from torch import nn

from chiplex.ir.torch_import import import_with_constants
from chiplex.ir.verify_import import verify_import

ACCEPTED = ("ok", "unsupported", "export_error")


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=cases(max_steps=4))
def test_random_modules_import_exactly_or_report_located_errors(case: Case) -> None:
    outcome = check(case)
    assert outcome.kind in ACCEPTED, f"{case.describe()}\n{outcome.kind}: {outcome.detail}"


def test_the_check_catches_a_wrong_import() -> None:
    # A check that never complains would pass every case: a module whose IR is built from a
    # different module must be a mismatch, and an error allowance must count single elements.
    torch.manual_seed(0)
    case = Case(
        Drawn([Step("tanh", lambda m, x: torch.tanh(x))]),
        torch.randn(2, 3),
        torch.float32,
        "i8",
        "bf16",
        False,
        0,
    )
    assert check(case).kind == "ok"
    ratio, _ = element_errors(
        torch.tensor([1.0, 1e6]).numpy(), torch.tensor([1.1, 1e6]).numpy(), 1e-4
    )
    assert ratio > 1


def _verify(model: nn.Module, *inputs: torch.Tensor, seed: int = 0) -> float:
    ir, constants = import_with_constants(model, inputs)
    check = verify_import(model, inputs, ir, constants, seed=seed)
    assert check.comparison.within(1e-5), check.summary(1e-5)
    return check.comparison.max_rel


# -- batch norm by the batch's own statistics (was unsupported) ---------------------------------


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 4, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_without_running_statistics(shape: tuple[int, ...], affine: bool) -> None:
    bn = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(
        3, affine=affine, track_running_stats=False, eps=1e-3
    )
    if affine:
        with torch.no_grad():
            bn.weight.normal_()
            bn.bias.normal_()
    _verify(bn, torch.randn(shape))


class _InPlaceThenBatchStatistics(nn.Module):
    """A mutation makes the importer functionalise: batch norm arrives as `.no_stats`."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y.add_(1.0)
        return self.bn(y)


def test_batch_norm_without_statistics_after_functionalisation() -> None:
    _verify(_InPlaceThenBatchStatistics(), torch.randn(2, 3, 4, 4))


def test_explicit_training_batch_norm_uses_the_batch_statistics() -> None:
    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.batch_norm(x, None, None, training=True, eps=0.1)

    _verify(Fn(), torch.randn(4, 3, 5))
