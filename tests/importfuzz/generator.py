"""Random small torch modules built from the ops the importer maps, and the check that the imported
IR computes what torch computes.

`cases()` is a hypothesis strategy of `Case`s: an input (floats of rank 2-4, or token ids feeding
an embedding), then a chain of 1-5 drawn steps (linear, convolution, batch / layer / group /
instance norm, activations, pooling, reshape / permute / slicing / cat / chunk, attention pieces,
`where` / `masked_fill`, reductions, elementwise ops with broadcast tensors and scalars, clamp,
cumsum), in a random floating-point dtype, imported with random weight and activation dtypes.
Shapes are tracked while drawing so every module runs.

`check(case)` imports the module and classifies what happened (`Outcome.kind`):

- `ok`: the interpreted IR matches torch: element by element against the module's float32 copy
  (the interpreter's numerics, `FLOAT32_RTOL` relative plus the same times the output's median
  magnitude absolute, so a huge value next to a small one must not round the small one away),
  and against the module run in its own dtype (`NATIVE_RTOL` times the larger of 1 and the
  output's largest magnitude);
- `mismatch` / `dtype_mismatch`: either comparison fails (with integer activations, `i8`, the
  interpreter computes integer-typed values as integers, so those imports are not compared);
- `unsupported`: the importer refused with its report; `located` says whether the message names
  the ATen op and the line of this file that used it (anything else is a `bad_error`);
- `export_error`: torch.export could not capture the module (a torch limitation, reported);
- `crash`: any exception other than `ChiplexError` (a traceback a user would see).
"""

from __future__ import annotations

import copy
import math
import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from chiplex.errors import ChiplexError
from chiplex.ir.interpret import compare_outputs, random_inputs, run
from chiplex.ir.torch_import import ImportNote, import_with_constants
from chiplex.ir.verify_import import module_parameters

Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]

FLOAT32_RTOL = 1e-4
"""Interpreter (float32) against torch float32, element-wise, relative to |expected| plus the same
times the output's median magnitude: float32 rounding of a few dozen ops is far below it."""
NATIVE_RTOL = {torch.float32: 1e-4, torch.float64: 1e-4, torch.float16: 3e-2, torch.bfloat16: 1e-1}
"""Interpreter (float32) against the module run in its own dtype, norm-wise (largest error over
largest magnitude): a half-precision module rounds every op to 11 or 8 bits."""
MAX_ELEMENTS = 4096
FLOAT_DTYPES = (torch.float32, torch.float32, torch.float64, torch.bfloat16, torch.float16)
IMPORT_DTYPES = ("i8", "bf16", "f16", "f32", "keep")


class Step(nn.Module):
    """One drawn layer: `fn(self, x)`, reading the submodules, parameters and buffers given."""

    def __init__(
        self,
        label: str,
        fn: Callable[[Step, torch.Tensor], torch.Tensor],
        modules: dict[str, nn.Module] | None = None,
        params: dict[str, torch.Tensor] | None = None,
        buffers: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.label = label
        self.fn = fn
        for k, m in (modules or {}).items():
            self.add_module(k, m)
        for k, p in (params or {}).items():
            self.register_parameter(k, nn.Parameter(p))
        for k, b in (buffers or {}).items():
            self.register_buffer(k, b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


class Drawn(nn.Module):
    """The drawn steps applied in a chain."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x


@dataclass
class Case:
    model: Drawn
    example: torch.Tensor
    dtype: torch.dtype
    weight_dtype: str
    activation_dtype: str
    train_mode: bool
    seed: int

    def describe(self) -> str:
        steps = " -> ".join(s.label for s in self.model.steps)  # type: ignore[union-attr]
        return (
            f"input {list(self.example.shape)} {str(self.example.dtype).removeprefix('torch.')}, "
            f"module {str(self.dtype).removeprefix('torch.')}"
            f"{' (train mode)' if self.train_mode else ''}, weights {self.weight_dtype}, "
            f"activations {self.activation_dtype}: {steps}"
        )


# -- the steps ---------------------------------------------------------------------------------
# Each `_xxx(draw, shape)` returns a Step and its output shape, or None when it does not apply to
# a value of that shape. Values stay O(1) (standard normal inputs, default initialisations) so
# that an absolute tolerance of FLOAT32_RTOL is meaningful; huge values come only from the
# scalars and scale factors drawn on purpose.

StepResult = tuple[Step, Shape] | None


def _dim(draw: Draw, shape: Shape) -> int:
    return draw(st.integers(0, len(shape) - 1))


def _linear(draw: Draw, shape: Shape) -> StepResult:
    out = draw(st.integers(1, 12))
    lin = nn.Linear(shape[-1], out, bias=draw(st.booleans()))
    return Step(f"Linear({shape[-1]}, {out})", lambda m, x: m.lin(x), {"lin": lin}), (
        *shape[:-1],
        out,
    )


def _conv2d(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) != 4:
        return None
    n, c, h, w = shape
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding: int | str = draw(st.integers(0, k // 2 + 1))
    if stride == 1 and k % 2 == 1 and draw(st.booleans()):
        padding = "same"
    groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    out = groups * draw(st.integers(1, 3))
    span = dilation * (k - 1) + 1
    pad = 0 if padding == "same" else int(padding)
    oh = h if padding == "same" else (h + 2 * pad - span) // stride + 1
    ow = w if padding == "same" else (w + 2 * pad - span) // stride + 1
    if oh < 1 or ow < 1:
        return None
    conv = nn.Conv2d(c, out, k, stride, padding, dilation, groups, bias=draw(st.booleans()))
    label = f"Conv2d({c}, {out}, {k}, stride={stride}, padding={padding!r}, dilation={dilation}, groups={groups})"
    return Step(label, lambda m, x: m.conv(x), {"conv": conv}), (n, out, oh, ow)


def _conv1d(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) != 3:
        return None
    n, c, length = shape
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k // 2))
    ol = (length + 2 * pad - k) // stride + 1
    if ol < 1:
        return None
    out = draw(st.integers(1, 6))
    conv = nn.Conv1d(c, out, k, stride, pad, bias=draw(st.booleans()))
    label = f"Conv1d({c}, {out}, {k}, stride={stride}, padding={pad})"
    return Step(label, lambda m, x: m.conv(x), {"conv": conv}), (n, out, ol)


def _batch_norm(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) not in (2, 3, 4):
        return None
    c = shape[1]
    affine = draw(st.booleans())
    track = draw(st.booleans())
    if not track and math.prod(shape) // c < 2:
        return None  # batch statistics of one value per channel: torch refuses
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    bn = cls(c, eps=eps, affine=affine, track_running_stats=track)
    with torch.no_grad():
        if track:
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        if affine:
            bn.weight.normal_()
            bn.bias.normal_()
    label = f"{cls.__name__}({c}, affine={affine}, track_running_stats={track}, eps={eps})"
    return Step(label, lambda m, x: m.bn(x), {"bn": bn}), shape


def _layer_norm(draw: Draw, shape: Shape) -> StepResult:
    dims = draw(st.integers(1, min(2, len(shape))))
    normalized = shape[-dims:]
    affine = draw(st.booleans())
    bias = draw(st.booleans())
    ln = nn.LayerNorm(normalized, eps=1e-5, elementwise_affine=affine, bias=bias)
    if affine:
        with torch.no_grad():
            ln.weight.normal_()
            if bias:
                ln.bias.normal_()
    label = f"LayerNorm({list(normalized)}, affine={affine}, bias={bias})"
    return Step(label, lambda m, x: m.ln(x), {"ln": ln}), shape


def _group_norm(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) not in (3, 4):
        return None
    c = shape[1]
    groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    if math.prod(shape[1:]) // groups < 2:
        return None
    gn = nn.GroupNorm(groups, c, affine=draw(st.booleans()))
    return Step(f"GroupNorm({groups}, {c})", lambda m, x: m.gn(x), {"gn": gn}), shape


def _instance_norm(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) != 4 or shape[2] * shape[3] < 2:
        return None
    norm = nn.InstanceNorm2d(shape[1], affine=draw(st.booleans()))
    return Step(f"InstanceNorm2d({shape[1]})", lambda m, x: m.norm(x), {"norm": norm}), shape


ACTIVATIONS: dict[str, Callable[[Step, torch.Tensor], torch.Tensor]] = {
    "relu": lambda m, x: F.relu(x),
    "gelu": lambda m, x: F.gelu(x),
    "gelu_tanh": lambda m, x: F.gelu(x, approximate="tanh"),
    "tanh": lambda m, x: torch.tanh(x),
    "sigmoid": lambda m, x: torch.sigmoid(x),
    "silu": lambda m, x: F.silu(x),
    "leaky_relu": lambda m, x: F.leaky_relu(x, 0.2),
    "elu": lambda m, x: F.elu(x),
    "selu": lambda m, x: F.selu(x),
    "celu": lambda m, x: F.celu(x, 0.5),
    "softplus": lambda m, x: F.softplus(x),
    "mish": lambda m, x: F.mish(x),
    "hardtanh": lambda m, x: F.hardtanh(x, -0.5, 0.5),
    "relu6": lambda m, x: F.relu6(x * 4),
    "hardswish": lambda m, x: F.hardswish(x),
    "hardsigmoid": lambda m, x: F.hardsigmoid(x),
    "logsigmoid": lambda m, x: F.logsigmoid(x),
    "softsign": lambda m, x: F.softsign(x),
    "softshrink": lambda m, x: F.softshrink(x, 0.5),
    "abs": lambda m, x: torch.abs(x),
    "neg": lambda m, x: -x,
    "exp": lambda m, x: torch.exp(x),
    "log": lambda m, x: torch.log(x.abs() + 0.1),
    "sqrt": lambda m, x: torch.sqrt(x.abs()),
    "rsqrt": lambda m, x: torch.rsqrt(x.abs() + 0.5),
    "square": lambda m, x: torch.square(x),
    "reciprocal": lambda m, x: torch.reciprocal(x.abs() + 1),
    "erf": lambda m, x: torch.erf(x),
    "log1p": lambda m, x: torch.log1p(x.abs()),
    "expm1": lambda m, x: torch.expm1(x),
    "sign": lambda m, x: torch.sign(x),
}


def _activation(draw: Draw, shape: Shape) -> StepResult:
    name = draw(st.sampled_from(sorted(ACTIVATIONS)))
    return Step(name, ACTIVATIONS[name]), shape


def _softmax(draw: Draw, shape: Shape) -> StepResult:
    dim = _dim(draw, shape)
    if draw(st.booleans()):
        return Step(f"softmax(dim={dim})", lambda m, x: F.softmax(x, dim)), shape
    return Step(f"log_softmax(dim={dim})", lambda m, x: F.log_softmax(x, dim)), shape


def _pool(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) != 4:
        return None
    n, c, h, w = shape
    kind = draw(st.sampled_from(["max", "avg", "adaptive_avg", "adaptive_max"]))
    if kind.startswith("adaptive"):
        oh = draw(st.sampled_from([d for d in range(1, h + 1) if h % d == 0]))
        ow = draw(st.sampled_from([d for d in range(1, w + 1) if w % d == 0]))
        fn = F.adaptive_avg_pool2d if kind == "adaptive_avg" else F.adaptive_max_pool2d
        label = f"{kind}_pool2d(({oh}, {ow}))"
        return Step(label, lambda m, x: fn(x, (oh, ow))), (n, c, oh, ow)
    k = draw(st.integers(1, min(3, h, w)))
    stride = draw(st.integers(1, k))
    pad = draw(st.integers(0, k // 2))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if kind == "max":
        label = f"max_pool2d({k}, stride={stride}, padding={pad})"
        return Step(label, lambda m, x: F.max_pool2d(x, k, stride, pad)), (n, c, oh, ow)
    include = draw(st.booleans())
    label = f"avg_pool2d({k}, stride={stride}, padding={pad}, count_include_pad={include})"
    return Step(label, lambda m, x: F.avg_pool2d(x, k, stride, pad, count_include_pad=include)), (
        n,
        c,
        oh,
        ow,
    )


def _reshape(draw: Draw, shape: Shape) -> StepResult:
    kind = draw(st.sampled_from(["flatten", "split_last", "unsqueeze", "merge_two"]))
    if kind == "flatten" and len(shape) >= 3:
        start = draw(st.integers(1, len(shape) - 2))
        out = (*shape[:start], math.prod(shape[start:]))
        return Step(f"flatten({start})", lambda m, x: torch.flatten(x, start)), out
    if kind == "split_last":
        last = shape[-1]
        factor = draw(st.sampled_from([d for d in range(1, last + 1) if last % d == 0]))
        out = (*shape[:-1], factor, last // factor)
        if len(out) > 4:
            return None
        return Step(f"reshape({list(out)})", lambda m, x: x.reshape(out)), out
    if kind == "unsqueeze" and len(shape) < 4:
        dim = draw(st.integers(1, len(shape)))
        out = (*shape[:dim], 1, *shape[dim:])
        return Step(f"unsqueeze({dim})", lambda m, x: x.unsqueeze(dim)), out
    if kind == "merge_two" and len(shape) >= 3:
        out = (shape[0], -1, shape[-1])
        real = (shape[0], math.prod(shape[1:-1]), shape[-1])
        return Step(f"view({list(out)})", lambda m, x: x.view(out)), real
    return None


def _permute(draw: Draw, shape: Shape) -> StepResult:
    if draw(st.booleans()):
        perm = tuple(draw(st.permutations(range(len(shape)))))
        out = tuple(shape[p] for p in perm)
        return Step(f"permute{perm}", lambda m, x: x.permute(perm)), out
    a, b = _dim(draw, shape), _dim(draw, shape)
    out_list = list(shape)
    out_list[a], out_list[b] = out_list[b], out_list[a]
    return Step(f"transpose({a}, {b})", lambda m, x: x.transpose(a, b)), tuple(out_list)


def _slice(draw: Draw, shape: Shape) -> StepResult:
    dim = _dim(draw, shape)
    size = shape[dim]
    kind = draw(st.sampled_from(["slice", "select", "narrow", "chunk", "negative"]))
    if kind == "select" and len(shape) >= 2:
        i = draw(st.integers(-size, size - 1))
        out = shape[:dim] + shape[dim + 1 :]
        return Step(f"select({dim}, {i})", lambda m, x: x.select(dim, i)), out
    if kind == "chunk":
        chunks = draw(st.integers(1, size))
        per = -(-size // chunks)
        count = -(-size // per)
        i = draw(st.integers(0, count - 1))
        length = min(per, size - i * per)
        out = shape[:dim] + (length,) + shape[dim + 1 :]
        return Step(f"chunk({chunks}, {dim})[{i}]", lambda m, x: x.chunk(chunks, dim)[i]), out
    start = draw(st.integers(0, size - 1))
    stop = draw(st.integers(start + 1, size))
    step = 1 if kind == "narrow" else draw(st.integers(1, 3))
    length = len(range(start, stop, step))
    out = shape[:dim] + (length,) + shape[dim + 1 :]
    if kind == "narrow":
        label = f"narrow({dim}, {start}, {stop - start})"
        return Step(label, lambda m, x: x.narrow(dim, start, stop - start)), out
    if kind == "negative":
        neg_start = start - size
        index = (slice(None),) * dim + (slice(neg_start, None, step),)
        length = len(range(start, size, step))
        out = shape[:dim] + (length,) + shape[dim + 1 :]
        return Step(f"[{neg_start}::{step}] at dim {dim}", lambda m, x: x[index]), out
    index = (slice(None),) * dim + (slice(start, stop, step),)
    return Step(f"[{start}:{stop}:{step}] at dim {dim}", lambda m, x: x[index]), out


def _cat(draw: Draw, shape: Shape) -> StepResult:
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    d = dim % len(shape)
    out = shape[:d] + (2 * shape[d],) + shape[d + 1 :]
    if math.prod(out) > MAX_ELEMENTS:
        return None
    if draw(st.booleans()):
        return Step(
            f"cat([x, tanh(x)], {dim})", lambda m, x: torch.cat([x, torch.tanh(x)], dim)
        ), out
    extra = torch.randn(shape)
    label = f"cat([param, x], {dim})"
    return Step(label, lambda m, x: torch.cat([m.extra, x], dim), params={"extra": extra}), out


def _attention(draw: Draw, shape: Shape) -> StepResult:
    if len(shape) != 3:
        return None
    n, seq, d = shape
    heads = draw(st.integers(1, 3))
    head_dim = draw(st.integers(1, 4))
    inner = heads * head_dim
    kind = draw(st.sampled_from(["manual", "sdpa"]))
    mask_kind = draw(st.sampled_from(["none", "causal", "additive", "bool"]))
    modules = {
        "q": nn.Linear(d, inner),
        "k": nn.Linear(d, inner),
        "v": nn.Linear(d, inner),
        "o": nn.Linear(inner, d),
    }
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    buffers = {"causal": causal}
    label = f"attention({kind}, heads={heads}, head_dim={head_dim}, mask={mask_kind})"

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(n, seq, heads, head_dim).transpose(1, 2)

    def fn(m: Step, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split(m.q(x)), split(m.k(x)), split(m.v(x))
        if kind == "sdpa":
            if mask_kind == "causal":
                ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif mask_kind == "bool":
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=m.causal)
            elif mask_kind == "additive":
                additive = torch.zeros(seq, seq).masked_fill(~m.causal, -1e4)
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=additive)
            else:
                ctx = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
            if mask_kind in ("causal", "bool"):
                scores = scores.masked_fill(~m.causal, float("-inf"))
            elif mask_kind == "additive":
                scores = torch.where(m.causal, scores, torch.finfo(scores.dtype).min)
            ctx = scores.softmax(-1) @ v
        return m.o(ctx.transpose(1, 2).reshape(n, seq, inner))

    return Step(label, fn, modules, buffers=buffers), shape


def _where(draw: Draw, shape: Shape) -> StepResult:
    threshold = draw(st.sampled_from([0.0, 0.5, -1.0]))
    kind = draw(
        st.sampled_from(
            [
                "scalar",
                "huge_scalar",
                "inf",
                "tensor",
                "huge_tensor",
                "param",
                "masked_fill",
                "flip",
            ]
        )
    )
    scale = draw(st.sampled_from([1e3, 1e5, 1e7]))
    value = draw(st.sampled_from([0.0, -2.5, 7.0]))
    if kind == "scalar":
        return Step(
            f"where(x > {threshold}, x, {value})", lambda m, x: torch.where(x > threshold, x, value)
        ), shape
    if kind == "huge_scalar":
        return Step(
            f"where(x > {threshold}, {-scale}, x)",
            lambda m, x: torch.where(x > threshold, -scale, x),
        ), shape
    if kind == "inf":
        sign = draw(st.sampled_from([1.0, -1.0]))
        return Step(
            f"masked_fill(x < {threshold}, {sign * math.inf})",
            lambda m, x: x.masked_fill(x < threshold, sign * math.inf).clamp(-5, 5),
        ), shape
    if kind == "tensor":
        return Step(
            f"where(x > {threshold}, x, tanh(x))",
            lambda m, x: torch.where(x > threshold, x, torch.tanh(x)),
        ), shape
    if kind == "huge_tensor":
        return Step(
            f"where(x > {threshold}, x, x * {scale})",
            lambda m, x: torch.where(x > threshold, x, x * scale),
        ), shape
    if kind == "param":
        other = torch.randn(shape[-1])
        return Step(
            f"where(x < {threshold}, param[{shape[-1]}], x)",
            lambda m, x: torch.where(x < threshold, m.other, x),
            params={"other": other},
        ), shape
    if kind == "masked_fill":
        mask = torch.rand(shape[-1]) < 0.5
        return Step(
            f"masked_fill(const mask, {value})",
            lambda m, x: x.masked_fill(m.mask, value),
            buffers={"mask": mask},
        ), shape
    return Step(
        f"where(x > {threshold}, x * {scale}, x)",
        lambda m, x: torch.where(x > threshold, x * scale, x),
    ), shape


def _reduce(draw: Draw, shape: Shape) -> StepResult:
    kind = draw(
        st.sampled_from(
            ["sum", "mean", "amax", "amin", "var", "var0", "std", "max", "min", "logsumexp", "norm"]
        )
    )
    dim = _dim(draw, shape)
    keep = draw(st.booleans()) or len(shape) == 1
    out = shape[:dim] + ((1,) if keep else ()) + shape[dim + 1 :]
    fns: dict[str, Callable[[Step, torch.Tensor], torch.Tensor]] = {
        "sum": lambda m, x: x.sum(dim, keepdim=keep),
        "mean": lambda m, x: x.mean(dim, keepdim=keep),
        "amax": lambda m, x: x.amax(dim, keepdim=keep),
        "amin": lambda m, x: x.amin(dim, keepdim=keep),
        "var": lambda m, x: x.var(dim, keepdim=keep),
        "var0": lambda m, x: x.var(dim, keepdim=keep, correction=0),
        "std": lambda m, x: x.std(dim, keepdim=keep),
        "max": lambda m, x: x.max(dim, keepdim=keep).values,
        "min": lambda m, x: x.min(dim, keepdim=keep)[0],
        "logsumexp": lambda m, x: x.logsumexp(dim, keepdim=keep),
        "norm": lambda m, x: x.norm(dim=dim, keepdim=keep),
    }
    if kind in ("var", "std") and shape[dim] < 2:
        return None
    return Step(f"{kind}(dim={dim}, keepdim={keep})", fns[kind]), out


BINARY: dict[str, Callable[[torch.Tensor, Any], torch.Tensor]] = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "rsub": lambda x, y: y - x,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / (y.abs() + 0.5 if isinstance(y, torch.Tensor) else y),
    "rdiv": lambda x, y: y / (x.abs() + 0.5),
    "maximum": lambda x, y: torch.maximum(x, y) if isinstance(y, torch.Tensor) else x.clamp(min=y),
    "minimum": lambda x, y: torch.minimum(x, y) if isinstance(y, torch.Tensor) else x.clamp(max=y),
    "pow": lambda x, y: (x.abs() + 0.5) ** (y.tanh() if isinstance(y, torch.Tensor) else y),
    "rpow": lambda x, y: (
        (y.abs() + 0.5 if isinstance(y, torch.Tensor) else abs(y) + 0.5) ** x.tanh()
    ),
}


def _binary(draw: Draw, shape: Shape) -> StepResult:
    op = draw(st.sampled_from(sorted(BINARY)))
    fn = BINARY[op]
    if draw(st.booleans()):
        scalar = draw(st.sampled_from([2, -1, 0.5, 3.0, 1e-3, -2.25]))
        return Step(f"{op}(x, {scalar})", lambda m, x: fn(x, scalar)), shape
    # A broadcast operand: some dims of x kept, the others 1, leading dims perhaps dropped.
    rank = draw(st.integers(1, len(shape)))
    kept = shape[len(shape) - rank :]
    other_shape = tuple(s if draw(st.booleans()) else 1 for s in kept)
    # The operand may also broadcast x (x's dim is 1 where the operand's is not).
    grown = tuple(
        draw(st.integers(2, 3)) if k == 1 and draw(st.booleans()) else s
        for k, s in zip(kept, other_shape, strict=True)
    )
    out = shape[: len(shape) - rank] + tuple(max(a, b) for a, b in zip(kept, grown, strict=True))
    if math.prod(out) > MAX_ELEMENTS:
        grown = other_shape
        out = shape
    label = f"{op}(x, param{list(grown)})"
    return Step(label, lambda m, x: fn(x, m.other), params={"other": torch.randn(grown)}), out


def _clamp(draw: Draw, shape: Shape) -> StepResult:
    lo = draw(st.sampled_from([None, -1.0, 0.0]))
    hi = draw(st.sampled_from([None, 0.5, 2.0]))
    if lo is None and hi is None:
        return None
    return Step(f"clamp({lo}, {hi})", lambda m, x: x.clamp(lo, hi)), shape


def _cumsum(draw: Draw, shape: Shape) -> StepResult:
    dim = _dim(draw, shape)
    return Step(f"cumsum({dim})", lambda m, x: x.cumsum(dim)), shape


def _residual(draw: Draw, shape: Shape) -> StepResult:
    """x + linear(norm(x)): a two-branch block (the value is read twice)."""
    norm = nn.LayerNorm(shape[-1])
    lin = nn.Linear(shape[-1], shape[-1])
    return Step(
        "x + Linear(LayerNorm(x))", lambda m, x: x + m.lin(m.norm(x)), {"norm": norm, "lin": lin}
    ), shape


UNMAPPABLE: dict[str, Callable[[Step, torch.Tensor], torch.Tensor]] = {
    # Ops nn has no exact form for (docs/importing.md, "Missing nn ops"): the import must fail
    # with the located report, never a traceback.
    "floor": lambda m, x: torch.floor(x),
    "round": lambda m, x: torch.round(x),
    "sin": lambda m, x: torch.sin(x),
    "remainder": lambda m, x: torch.remainder(x, 0.75),
    "prod": lambda m, x: x.prod(-1, keepdim=True),
    "cumprod": lambda m, x: x.cumprod(-1),
    "argmax": lambda m, x: x + x.argmax(-1, keepdim=True),
    "topk": lambda m, x: x.topk(1, -1).values,
    "sort": lambda m, x: x.sort(-1).values,
}


def _unmappable(draw: Draw, shape: Shape) -> StepResult:
    name = draw(st.sampled_from(sorted(UNMAPPABLE)))
    keep_last = name in ("prod", "topk")
    out = (*shape[:-1], 1) if keep_last else shape
    return Step(name, UNMAPPABLE[name]), out


STEPS: dict[str, Callable[[Draw, Shape], StepResult]] = {
    "linear": _linear,
    "conv2d": _conv2d,
    "conv1d": _conv1d,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "instance_norm": _instance_norm,
    "activation": _activation,
    "softmax": _softmax,
    "pool": _pool,
    "reshape": _reshape,
    "permute": _permute,
    "slice": _slice,
    "cat": _cat,
    "attention": _attention,
    "where": _where,
    "reduce": _reduce,
    "binary": _binary,
    "clamp": _clamp,
    "cumsum": _cumsum,
    "residual": _residual,
}
"""Every family drawn by default; `unmappable` only when asked for (it makes the import fail)."""
ALL_STEPS = {**STEPS, "unmappable": _unmappable}


@st.composite
def cases(draw: Draw, max_steps: int = 5, families: tuple[str, ...] = tuple(STEPS)) -> Case:
    """A random small module over a random input, with random dtypes and import options."""
    seed = draw(st.integers(0, 2**31 - 1))
    torch.manual_seed(seed)
    steps: list[Step] = []
    if draw(st.integers(0, 5)) == 0:
        vocab, dim = draw(st.integers(2, 20)), draw(st.integers(1, 8))
        shape: Shape = (draw(st.integers(1, 2)), draw(st.integers(1, 6)))
        example = torch.zeros(shape, dtype=draw(st.sampled_from([torch.int64, torch.int32])))
        emb = nn.Embedding(vocab, dim)
        steps.append(Step(f"Embedding({vocab}, {dim})", lambda m, x: m.emb(x), {"emb": emb}))
        shape = (*shape, dim)
    else:
        rank = draw(st.integers(2, 4))
        sizes = [draw(st.integers(1, 3))] + [draw(st.integers(1, 6)) for _ in range(rank - 1)]
        shape = tuple(sizes)
        example = torch.randn(shape)
    for _ in range(draw(st.integers(1, max_steps))):
        family = draw(st.sampled_from(families))
        drawn = ALL_STEPS[family](draw, shape)
        if drawn is None or math.prod(drawn[1]) > MAX_ELEMENTS or 0 in drawn[1]:
            continue
        step, shape = drawn
        steps.append(step)
    if not steps:
        steps.append(Step("relu", ACTIVATIONS["relu"]))
    model = Drawn(steps)
    with torch.no_grad():
        ran = tuple(model.eval()(example).shape)
    assert ran == shape, f"the generator tracked {shape}, torch computed {ran}: {model.steps}"
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    model = model.to(dtype)
    if example.is_floating_point():
        example = example.to(dtype)
    train_mode = draw(st.booleans())
    model.train(train_mode)
    return Case(
        model,
        example,
        dtype,
        draw(st.sampled_from(IMPORT_DTYPES)),
        draw(st.sampled_from(IMPORT_DTYPES)),
        train_mode,
        seed,
    )


# -- the check ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    detail: str = ""
    ops: list[str] = field(default_factory=list)
    located: bool = True


UNSUPPORTED_LINE = re.compile(r"^\s+(aten\.[\w.]+)(?: \((.*)\))?: \d+ \(first at (.+?):(\d+)\)$")


def _classify_error(message: str) -> Outcome:
    if message.startswith("torch.export could not capture"):
        return Outcome("export_error", message)
    if "unsupported ATen op" not in message:
        return Outcome("bad_error", message, located=False)
    ops: list[str] = []
    located = True
    for line in message.splitlines()[1:]:
        hit = UNSUPPORTED_LINE.match(line)
        if hit is None:
            located = False
            continue
        ops.append(hit.group(1))
        located &= hit.group(3).endswith("generator.py")
    return Outcome("unsupported" if located and ops else "bad_error", message, ops, located)


def element_errors(got: np.ndarray, expected: np.ndarray, rtol: float) -> tuple[float, str]:
    """The worst element's error in units of its allowance (`rtol * (|e| + median |e|)`), and a
    description of that element; NaN and infinities must agree exactly."""
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        return math.inf, f"shape {g.shape}, expected {e.shape}"
    same = (np.isnan(g) & np.isnan(e)) | (g == e)
    finite = np.abs(e[np.isfinite(e)])
    median = float(np.median(finite)) if finite.size else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        allowance = rtol * (np.abs(e) + max(median, 1e-3))
        ratio = np.where(same, 0.0, np.abs(g - e) / allowance)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    if ratio.size == 0:
        return 0.0, ""
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return float(
        ratio[worst]
    ), f"at {tuple(int(i) for i in worst)}: got {g[worst]!r}, torch {e[worst]!r}"


def check(case: Case, seed: int = 0) -> Outcome:
    """Import, interpret and compare `case` (see the module docstring for the outcome kinds)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportNote)
            ir, constants = import_with_constants(
                case.model,
                (case.example,),
                weight_dtype=case.weight_dtype,
                activation_dtype=case.activation_dtype,
            )
    except ChiplexError as e:
        return _classify_error(str(e))
    except Exception:  # noqa: BLE001 - what a user would see as a traceback
        return Outcome("crash", traceback.format_exc())
    try:
        (drawn,) = random_inputs(ir, seed)
        x = torch.from_numpy(np.ascontiguousarray(drawn))
        x32 = x.float() if case.example.is_floating_point() else x.to(case.example.dtype)
        reference = copy.deepcopy(case.model).float().eval()
        with torch.no_grad():
            expected = reference(x32).numpy()
            native_model = copy.deepcopy(case.model).eval()
            native_x = x32.to(case.dtype) if x32.is_floating_point() else x32
            native = native_model(native_x).float().numpy()
        (got,) = run(ir, [x32.numpy()], module_parameters(case.model, constants))
    except Exception:  # noqa: BLE001
        return Outcome("crash", traceback.format_exc())
    if case.activation_dtype.startswith("i"):
        # The interpreter computes integer-typed values as integers (a cast to i8 truncates,
        # cumsum sums as int64): with integer activations the IR's numbers are not torch's
        # floats, so only the import itself is checked (reported to the merger as a limitation).
        return Outcome("ok", "integer activations: not compared")
    ratio, where = element_errors(got, expected, FLOAT32_RTOL)
    if ratio > 1:
        return Outcome("mismatch", f"{ratio:.3g} x the float32 tolerance {where}")
    if case.dtype != torch.float32 and np.isfinite(native).sum() == np.isfinite(expected).sum():
        # (A half-precision module that overflows, x * 1e5 in float16, has no result to compare.)
        comparison = compare_outputs([got], [native])
        tol = NATIVE_RTOL[case.dtype]
        # Relative to the output's size or 1, whichever is larger: a float32 zero (a layer norm of
        # one element) is rounding noise in bfloat16, all of it "relative error 1".
        size = float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0))
        if comparison.max_abs > tol * max(1.0, size):
            return Outcome(
                "dtype_mismatch",
                f"relative error {comparison.max_rel:.3g} against torch in {case.dtype} (tolerance {tol})",
            )
    return Outcome("ok")
