"""Verified imports: every zoo family and every op family the importer maps computes, on the reference
interpreter, what torch eager computes (float32, 1e-4 relative error), and `import-torch --verify`
reports the error and fails above its tolerance."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn as tnn

from chiplex.cli import main
from chiplex.ir.torch_import import import_with_constants
from chiplex.ir.verify_import import verify_import
from chiplex.models import bert, example_inputs, gpt2, mlp, resnet, vit

RTOL = 1e-4


def verified(model: tnn.Module, inputs: tuple[torch.Tensor, ...], seed: int = 0) -> float:
    """Import with the CLI's default dtypes (i8 weights, bf16 activations) and verify."""
    ir, consts = import_with_constants(model, inputs)
    check = verify_import(model, inputs, ir, consts, seed=seed)
    assert check.comparison.within(RTOL), check.summary(RTOL)
    return check.comparison.max_rel


SMALL_ZOO: dict[str, Callable[[], tnn.Module]] = {
    "bert": lambda: bert(2, 64, 4, seq=16),
    "bert_embeddings": lambda: bert(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50),
    "gpt2": lambda: gpt2(2, 64, 4, seq=16),
    "gpt2_tied_head": lambda: gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50),
    "vit": lambda: vit(32, 8, 2, 64, 4, num_classes=10),
    "resnet_basic": lambda: resnet((1, 1), width=8, image=32, num_classes=10),
    "resnet_bottleneck": lambda: resnet((1, 2), bottleneck=True, width=8, image=32),
    "mlp": lambda: mlp(32, 64, 3, 10, batch=4),
}


@pytest.mark.parametrize("name", sorted(SMALL_ZOO))
def test_zoo_models_at_small_sizes_match_torch(name: str) -> None:
    model = SMALL_ZOO[name]()
    verified(model, example_inputs(model))


# ---------------------------------------------------------------------------------------------
# One small module per op family the importer maps
# ---------------------------------------------------------------------------------------------


class Fn(tnn.Module):
    """A module whose forward is a function of its inputs and a few parameters."""

    def __init__(self, fn: Callable[..., torch.Tensor], **params: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        for k, v in params.items():
            self.register_parameter(k, tnn.Parameter(v))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(self, *xs)


def _r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _bn(affine: bool) -> tnn.Module:
    bn = tnn.BatchNorm2d(4, affine=affine, eps=1e-3)
    bn.running_mean.normal_(0, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    if affine:
        with torch.no_grad():
            bn.weight.normal_()
            bn.bias.normal_()
    return tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), bn)


class Attention(tnn.Module):
    def __init__(self, causal: bool, masked: bool) -> None:
        super().__init__()
        self.causal, self.masked = causal, masked
        self.register_buffer("mask", torch.rand(6, 6) > 0.3)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mask = self.mask | torch.eye(6, dtype=torch.bool) if self.masked else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)


class MaskedBuffer(tnn.Module):
    """A constant mask filled with a finite value and with -inf."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.rand(5, 8) > 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.masked_fill(self.mask, 0.5) + x.masked_fill(self.mask, -2.0).softmax(-1)


class TwoIndex(tnn.Module):
    """`x[i, j]`: index tensors at adjacent dims (linearised into one nn.gather)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("i", torch.tensor([[2, 0], [1, 1]]))
        self.register_buffer("j", torch.tensor([3, 0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.i, self.j] * 2 + x[:, self.j].sum(1, keepdim=True)[:2, :, :1]


class SetItem(tnn.Module):
    """In-place writes into a fresh tensor (functionalised into slice_scatter / copy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[:, 1:3] = x[:, :2] * 2
        y[:, :, -1] = 0.0
        return y


IMG = (2, 3, 8, 8)
SEQ = (2, 5, 8)

# name -> (module factory, input factory)
FAMILIES: dict[str, tuple[Callable[[], tnn.Module], Callable[[], tuple[torch.Tensor, ...]]]] = {
    # contractions
    "linear": (lambda: tnn.Linear(8, 6), lambda: (_r(*SEQ),)),
    "linear_1d": (lambda: tnn.Linear(8, 6), lambda: (_r(8),)),
    "addmm": (
        lambda: Fn(lambda m, x: torch.addmm(m.b, x, m.w), w=_r(8, 3), b=_r(3)),
        lambda: (_r(4, 8),),
    ),
    "mm": (lambda: Fn(lambda m, x, y: torch.mm(x, y)), lambda: (_r(4, 8), _r(8, 3))),
    "bmm": (lambda: Fn(lambda m, x, y: torch.bmm(x, y)), lambda: (_r(2, 4, 8), _r(2, 8, 3))),
    "matmul_broadcast": (lambda: Fn(lambda m, x, y: x @ y), lambda: (_r(2, 3, 4, 8), _r(3, 8, 5))),
    "conv2d": (lambda: tnn.Conv2d(3, 6, 3, stride=2, padding=1), lambda: (_r(*IMG),)),
    "conv2d_groups_dilation": (
        lambda: tnn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2, bias=False),
        lambda: (_r(1, 4, 9, 9),),
    ),
    "conv2d_same": (lambda: tnn.Conv2d(3, 4, 5, padding="same"), lambda: (_r(*IMG),)),
    # elementwise
    "binary_alpha": (
        lambda: Fn(lambda m, x, y: torch.add(x, y, alpha=0.5) - torch.sub(x, y, alpha=2)),
        lambda: (_r(*SEQ), _r(8)),
    ),
    "mul_div_pow": (
        lambda: Fn(lambda m, x, y: x * y / (y * y + 1) + (x * x + 0.1).pow(1.5)),
        lambda: (_r(*SEQ), _r(*SEQ)),
    ),
    "max_min": (
        lambda: Fn(lambda m, x, y: torch.maximum(x, y) + torch.minimum(x, 0.5 * y)),
        lambda: (_r(*SEQ), _r(*SEQ)),
    ),
    "rsub_reciprocal_square": (
        lambda: Fn(lambda m, x: torch.rsub(x, 1.0) + torch.reciprocal(x * x + 1) + torch.square(x)),
        lambda: (_r(*SEQ),),
    ),
    "activations": (
        lambda: Fn(
            lambda m, x: F.relu(x) + F.gelu(x) + torch.tanh(x) + torch.sigmoid(x) + F.silu(x)
        ),
        lambda: (_r(*SEQ),),
    ),
    "gelu_tanh": (lambda: tnn.GELU(approximate="tanh"), lambda: (_r(*SEQ) * 3,)),
    "transcendentals": (
        lambda: Fn(
            lambda m, x: (
                torch.exp(x)
                + torch.log(x * x + 0.1)
                + torch.erf(x)
                + torch.sqrt(x * x)
                + torch.rsqrt(x * x + 1)
                - x
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "clamps": (
        lambda: Fn(
            lambda m, x: x.clamp(-0.5, 0.7) + F.relu6(3 * x) + F.hardtanh(x) + x.clamp_min(0.1)
        ),
        lambda: (_r(*SEQ),),
    ),
    "hardswish_decomposed": (lambda: tnn.Hardswish(), lambda: (_r(*SEQ) * 4,)),
    # normalisation
    "softmax": (
        lambda: Fn(lambda m, x: torch.softmax(x, 1) + F.log_softmax(x, -1)),
        lambda: (_r(*SEQ),),
    ),
    "layer_norm": (lambda: tnn.LayerNorm(8), lambda: (_r(*SEQ),)),
    "layer_norm_2d_no_affine": (
        lambda: tnn.LayerNorm((5, 8), elementwise_affine=False),
        lambda: (_r(*SEQ),),
    ),
    "batch_norm": (lambda: _bn(True), lambda: (_r(*IMG),)),
    "batch_norm_no_affine": (lambda: _bn(False), lambda: (_r(*IMG),)),
    # reductions
    "reductions": (
        lambda: Fn(
            lambda m, x: (
                x.mean(-1, keepdim=True) + x.sum(1, keepdim=True) + x.amax(-1, keepdim=True)
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "var": (
        lambda: Fn(lambda m, x: x.var(-1, keepdim=True) + x.var(1, unbiased=False, keepdim=True)),
        lambda: (_r(*SEQ),),
    ),
    "full_reduce": (lambda: Fn(lambda m, x: x.sum() + x.mean() + x.max()), lambda: (_r(*SEQ),)),
    # pooling
    "max_pool": (lambda: tnn.MaxPool2d(3, 2, 1), lambda: (_r(*IMG),)),
    "avg_pool": (lambda: tnn.AvgPool2d(2), lambda: (_r(*IMG),)),
    "avg_pool_padded": (lambda: tnn.AvgPool2d(3, 2, 1), lambda: (_r(*IMG),)),
    "avg_pool_padded_exclusive": (
        lambda: tnn.AvgPool2d(3, 2, 1, count_include_pad=False),
        lambda: (_r(*IMG),),
    ),
    "adaptive_avg_pool": (
        lambda: Fn(
            lambda m, x: (
                F.adaptive_avg_pool2d(x, 1).flatten(1)
                + F.adaptive_avg_pool2d(x, 2).flatten(1)[:, :3]
            )
        ),
        lambda: (_r(*IMG),),
    ),
    # views and data movement
    "views": (
        lambda: Fn(
            lambda m, x: (
                x.view(2, 40)
                .unsqueeze(0)
                .squeeze(0)
                .flatten()
                .reshape(10, 8)
                .t()
                .contiguous()
                .unflatten(1, (2, 5))
                .permute(2, 0, 1)
                .transpose(0, 1)
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "expand": (
        lambda: Fn(lambda m, x, y: x.expand(2, 5, 8) * y + y.expand(3, 2, 5, 8).sum(0)),
        lambda: (_r(1, 5, 1), _r(*SEQ)),
    ),
    "cast": (
        lambda: Fn(lambda m, x: x.to(torch.float64).to(torch.float32) + (3 * x).to(torch.int64)),
        lambda: (_r(*SEQ),),
    ),
    "cat": (
        lambda: Fn(lambda m, x, y: torch.cat([x, y, x], dim=-1)),
        lambda: (_r(*SEQ), _r(2, 5, 3)),
    ),
    "slice_narrow_select": (
        lambda: Fn(
            lambda m, x: (
                x[:, 1:4, ::2].sum(-1) + x.narrow(2, 2, 3).sum(-1)[:, :3] + x.select(1, 2)[:, :1]
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "split_chunk_unbind": (
        lambda: Fn(
            lambda m, x: (
                x.split(3, -1)[1][:, :3] * x.chunk(2, 1)[0][:, :, :3]
                + sum(x.unbind(1))[:, None, :3]
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "embedding": (lambda: tnn.Embedding(11, 8), lambda: (torch.randint(0, 11, (2, 5)),)),
    "index_select": (
        lambda: Fn(lambda m, x, i: torch.index_select(x, 1, i)),
        lambda: (_r(*SEQ), torch.tensor([4, 0, 2, 2])),
    ),
    "where": (
        lambda: Fn(lambda m, x, c: torch.where(c, x, x * 2)),
        lambda: (_r(*SEQ), torch.rand(*SEQ) > 0.5),
    ),
    "masked_fill": (
        lambda: Fn(lambda m, x, c: x.masked_fill(c, 0.25)),
        lambda: (_r(*SEQ), torch.rand(5, 8) > 0.5),
    ),
    "masked_fill_inf": (
        lambda: Fn(
            lambda m, x, c: (
                torch.softmax(x.masked_fill(c, float("-inf")), -1) + torch.where(c, x, float("inf"))
            )
        ),
        lambda: (_r(*SEQ), torch.eye(5, 8, dtype=torch.bool) | (torch.rand(5, 8) > 0.5)),
    ),
    "masked_fill_buffer": (lambda: MaskedBuffer(), lambda: (_r(*SEQ),)),
    "factories": (
        lambda: Fn(
            lambda m, x: x + torch.ones(5, 8) * 2 + torch.full((8,), 0.5) + torch.zeros_like(x)
        ),
        lambda: (_r(*SEQ),),
    ),
    # comparisons, scans, element gathers, padding, slice writes (issue-models' nn ops)
    "compare": (
        lambda: Fn(
            lambda m, x, y: (
                (x > y).float()
                + (x <= 0.25).float() * 2
                + (x.ne(y) & (y >= -0.5)).float() * 3
                + ((x < 0) | (y == y.amax(-1, keepdim=True))).float() * 4
            )
        ),
        lambda: (_r(*SEQ), _r(*SEQ)),
    ),
    "cumsum": (
        lambda: Fn(lambda m, x: torch.cumsum(x, 1) + x.cumsum(-1) * 0.5),
        lambda: (_r(*SEQ),),
    ),
    "cumsum_position_ids": (
        # RoBERTa's position ids: the running count of non-padding tokens, masked.
        lambda: Fn(
            lambda m, ids: (torch.cumsum(ids.ne(1).int(), 1) * ids.ne(1).int() + 1).float() * 0.1
        ),
        lambda: (torch.randint(0, 4, (2, 9)),),
    ),
    "gather_elements": (
        lambda: Fn(
            lambda m, x, i: (
                torch.gather(x, 2, i) + torch.gather(x, 1, i[:, :2, :3]).sum(1, keepdim=True)
            )
        ),
        lambda: (_r(*SEQ), torch.randint(0, 5, (2, 4, 3))),
    ),
    "index": (
        lambda: Fn(
            lambda m, x, i: x[i] + x[:, i].sum(0)[:1],
        ),
        lambda: (_r(*SEQ), torch.tensor([1, 0])),
    ),
    "index_two_tensors": (lambda: TwoIndex(), lambda: (_r(3, 4, 6),)),
    "pad": (
        lambda: Fn(
            lambda m, x: (
                F.pad(x, (1, 2)).sum(-1)
                + F.pad(x, (0, 0, 1, 0), value=0.5)[:, 1:].sum(-1)
                + F.pad(x, (-1, 1))[..., :5].sum(-1, keepdim=True)[..., 0]
            )
        ),
        lambda: (_r(*SEQ),),
    ),
    "slice_scatter": (
        lambda: Fn(
            lambda m, x, y: (
                torch.slice_scatter(x, y, dim=2, start=1, end=8, step=2)
                + torch.select_scatter(x, torch.cat([y[:, 0], y[:, 1]], -1), 1, 3)
            )
        ),
        lambda: (_r(*SEQ), _r(2, 5, 4)),
    ),
    "setitem": (lambda: SetItem(), lambda: (_r(*SEQ),)),
    "conv1d": (lambda: tnn.Conv1d(5, 6, 3, stride=2, padding=1), lambda: (_r(2, 5, 11),)),
    # attention
    "sdpa": (
        lambda: Attention(False, False),
        lambda: (_r(2, 2, 6, 4), _r(2, 2, 6, 4), _r(2, 2, 6, 4)),
    ),
    "sdpa_causal": (
        lambda: Attention(True, False),
        lambda: (_r(2, 2, 6, 4), _r(2, 2, 6, 4), _r(2, 2, 6, 4)),
    ),
    "sdpa_bool_mask": (
        lambda: Attention(False, True),
        lambda: (_r(2, 2, 6, 4), _r(2, 2, 6, 4), _r(2, 2, 6, 4)),
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_op_families_match_torch(family: str) -> None:
    make_module, make_inputs = FAMILIES[family]
    torch.manual_seed(0)
    model = make_module().eval()
    verified(model, make_inputs())


def test_weight_dtype_does_not_change_the_numbers() -> None:
    """Declared dtypes are costs: i8, bf16 or f32 weights interpret to the same float32 values."""
    model = mlp(16, 32, 2, 4, batch=2)
    inputs = example_inputs(model)
    errors = set()
    for dtype in ("i8", "bf16", "f32"):
        ir, consts = import_with_constants(model, inputs, weight_dtype=dtype)
        errors.add(verify_import(model, inputs, ir, consts).comparison.max_rel)
    assert len(errors) == 1 and errors.pop() < RTOL


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


def test_import_torch_verify_reports_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vit.mlir"
    assert (
        main(
            [
                "import-torch",
                "chiplex.models:vit(32, 8, 1, 32, 2, num_classes=5)",
                "--verify",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "verify (seed 0, 1 output): max abs error" in err and ": ok" in err
    rel = float(err.split("max rel error ")[1].split()[0])
    assert 0 < rel < RTOL
    assert out.exists()


def test_import_torch_verify_fails_above_the_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = tmp_path / "user_model.py"
    # A module whose output is huge next to its rounding error: 0 tolerance must fail.
    user.write_text(
        "import torch\n"
        "def model():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 8))\n"
    )
    out = tmp_path / "m.mlir"
    code = main([
        "import-torch", f"{user}:model", "--input-shape", "4x64", "--verify",
        "--verify-rtol", "0", "-o", str(out),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "chiplex: error: verify failed for" in err and "above --verify-rtol 0" in err
    assert "Traceback" not in err
    assert not out.exists(), "a failed verification must not write the IR"
    assert (
        main(
            [
                "import-torch",
                f"{user}:model",
                "--input-shape",
                "4x64",
                "--verify",
                "--verify-rtol",
                "-1",
            ]
        )
        == 1
    )
    assert "--verify-rtol must be >= 0" in capsys.readouterr().err


def test_relative_error_is_normwise() -> None:
    from chiplex.ir.interpret import compare_outputs

    c = compare_outputs([[1.0, 2.0, 1e-9]], [[1.0, 2.0, 0.0]])
    assert c.max_abs == pytest.approx(1e-9) and c.max_rel == pytest.approx(5e-10)
    c = compare_outputs([[math.nan, -math.inf]], [[math.nan, -math.inf]])
    assert c.max_abs == 0 and c.max_rel == 0
    assert compare_outputs([[math.nan]], [[1.0]]).max_rel == math.inf
