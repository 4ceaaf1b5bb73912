"""Random but realistic NN-shaped graphs in `nn` IR, for tests and for training the learned placer.

Each graph is drawn from a seed (the same seed always gives the same IR) and comes from one of four
families, built in memory through the xDSL API like the PyTorch importer's output:

* `transformer`: attention + feed-forward blocks (pre- or post-LayerNorm, separate or fused QKV,
  optional causal mask, GELU / ReLU / SiLU), optional token embeddings and an output head;
* `convnet`: a convolution stem, stages of basic, bottleneck or depthwise-separable residual blocks
  with batch norm and downsampling, global average pooling and a classifier;
* `mlp`: stacks of linear layers of varying widths, with residuals and LayerNorm where widths allow;
* `hybrid`: a convolution stem and patchifier feeding transformer blocks (ViT-like), mean-pooled.

Widths, depths, sequence lengths, image sizes and batch sizes vary per graph. Parameters are named
like state-dict entries (`blocks.3.attn.q.weight`) and stored in the layout `nn.matmul` reads.
`max_weight_bytes` caps a graph's parameter bytes (see SyntheticConfig).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, i64
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from chiplex.ir import nn
from chiplex.ir.types import parse_dtype, tensor_bytes

KINDS: tuple[str, ...] = ("transformer", "convnet", "mlp", "hybrid")


@dataclass(frozen=True)
class SyntheticConfig:
    """What a generated graph may look like."""

    kinds: tuple[str, ...] = KINDS
    """Families to draw from (uniformly) when no kind is asked for."""
    max_blocks: int = 12
    """Most residual blocks (transformer / MLP blocks, or conv blocks over all stages)."""
    max_weight_bytes: int | None = None
    """Parameter bytes (each param once) a graph should stay under: the stack stops before the
    block that would overflow, and sizes are redrawn when even one block does not fit."""
    weight_dtype: str = "i8"
    activation_dtype: str = "bf16"


def _shape(v: SSAValue) -> tuple[int, ...]:
    return tuple(cast(TensorType, v.type).get_shape())


class _Builder:
    """Appends ops to a list, names params and results, and tracks parameter bytes."""

    def __init__(self, rng: random.Random, weight_type: Attribute, act_type: Attribute) -> None:
        self.rng = rng
        self.wt = weight_type
        self.at = act_type
        self.ops: list[Operation] = []
        self.hints: dict[str, int] = {}
        self.scalars: dict[float, SSAValue] = {}
        self.param_bytes = 0

    # Blocks are built speculatively: a block that overflows the weight budget is rolled back.
    def mark(self) -> tuple[int, dict[str, int], dict[float, SSAValue], int]:
        return len(self.ops), dict(self.hints), dict(self.scalars), self.param_bytes

    def rollback(self, mark: tuple[int, dict[str, int], dict[float, SSAValue], int]) -> None:
        n, hints, scalars, nbytes = mark
        del self.ops[n:]
        self.hints, self.scalars, self.param_bytes = hints, scalars, nbytes

    def emit(self, op: Operation, hint: str) -> SSAValue:
        self.ops.append(op)
        n = self.hints.get(hint, 0) + 1
        self.hints[hint] = n
        result = op.results[0]
        result.name_hint = hint if n == 1 else f"{hint}.{n}"
        return result

    def param(self, name: str, shape: Sequence[int], elem: Attribute | None = None) -> SSAValue:
        t = TensorType(elem or self.wt, list(shape))
        self.param_bytes += tensor_bytes(t)
        return self.emit(nn.ParamOp(name, t), name)

    def scalar(self, value: float) -> SSAValue:
        if value not in self.scalars:
            self.scalars[value] = self.emit(nn.ConstantOp(value, TensorType(self.at, [])), "cst")
        return self.scalars[value]

    # -- layers -------------------------------------------------------------------------------

    def linear(self, x: SSAValue, out: int, prefix: str, *, bias: bool = True) -> SSAValue:
        w = self.param(f"{prefix}.weight", (_shape(x)[-1], out))
        y = self.emit(nn.MatmulOp(x, w), f"{prefix}.matmul")
        if bias:
            y = self.emit(nn.AddOp(y, self.param(f"{prefix}.bias", (out,))), f"{prefix}.add")
        return y

    def layer_norm(self, x: SSAValue, prefix: str) -> SSAValue:
        d = _shape(x)[-1]
        g, b = self.param(f"{prefix}.weight", (d,)), self.param(f"{prefix}.bias", (d,))
        return self.emit(nn.LayerNormOp(x, g, b), f"{prefix}.layer_norm")

    def activation(self, x: SSAValue, kind: str, prefix: str) -> SSAValue:
        cls = {"gelu": nn.GeluOp, "relu": nn.ReluOp, "silu": nn.SiluOp, "tanh": nn.TanhOp}[kind]
        return self.emit(cls(x), f"{prefix}.{kind}")

    def add(self, a: SSAValue, b: SSAValue, prefix: str) -> SSAValue:
        return self.emit(nn.AddOp(a, b), f"{prefix}.add")

    def reshape(self, x: SSAValue, shape: Sequence[int], prefix: str) -> SSAValue:
        t = TensorType(cast(TensorType, x.type).get_element_type(), list(shape))
        return self.emit(nn.ReshapeOp(x, t), f"{prefix}.reshape")

    def transpose(self, x: SSAValue, perm: Sequence[int], prefix: str) -> SSAValue:
        return self.emit(nn.TransposeOp(x, list(perm)), f"{prefix}.transpose")

    def attention(
        self, x: SSAValue, heads: int, prefix: str, *, fused: bool, mask: SSAValue | None
    ) -> SSAValue:
        b, s, d = _shape(x)
        hd = d // heads
        if fused:
            qkv = self.linear(x, 3 * d, f"{prefix}.qkv")
            parts = [
                self.emit(nn.SliceOp(qkv, [0, 0, i * d], [b, s, d]), f"{prefix}.{'qkv'[i]}.slice")
                for i in range(3)
            ]
        else:
            parts = [self.linear(x, d, f"{prefix}.{n}") for n in "qkv"]
        heads_of = [
            self.transpose(self.reshape(p, (b, s, heads, hd), prefix), (0, 2, 1, 3), prefix)
            for p in parts
        ]
        q, k, v = heads_of
        kt = self.transpose(k, (0, 1, 3, 2), prefix)
        scores = self.emit(nn.BatchMatmulOp(q, kt), f"{prefix}.scores")
        scores = self.emit(nn.MulOp(scores, self.scalar(hd**-0.5)), f"{prefix}.scale")
        if mask is not None:
            scores = self.emit(nn.AddOp(scores, mask), f"{prefix}.mask")
        probs = self.emit(nn.SoftmaxOp(scores, -1), f"{prefix}.softmax")
        ctx = self.emit(nn.BatchMatmulOp(probs, v), f"{prefix}.ctx")
        ctx = self.reshape(self.transpose(ctx, (0, 2, 1, 3), prefix), (b, s, d), prefix)
        return self.linear(ctx, d, f"{prefix}.out")

    def ffn(self, x: SSAValue, hidden: int, act: str, prefix: str) -> SSAValue:
        d = _shape(x)[-1]
        h = self.activation(self.linear(x, hidden, f"{prefix}.w1"), act, prefix)
        return self.linear(h, d, f"{prefix}.w2")

    def conv_bn(
        self,
        x: SSAValue,
        cout: int,
        k: int,
        stride: int,
        prefix: str,
        *,
        groups: int = 1,
        relu: bool = True,
    ) -> SSAValue:
        cin = _shape(x)[1]
        w = self.param(f"{prefix}.conv.weight", (cout, cin // groups, k, k))
        y = self.emit(
            nn.Conv2dOp(x, w, (stride, stride), (k // 2, k // 2), (1, 1), groups), f"{prefix}.conv"
        )
        scale, shift = (
            self.param(f"{prefix}.bn.weight", (cout,)),
            self.param(f"{prefix}.bn.bias", (cout,)),
        )
        y = self.emit(nn.BatchNormOp(y, scale, shift), f"{prefix}.bn")
        return self.emit(nn.ReluOp(y), f"{prefix}.relu") if relu else y


# ---------------------------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------------------------


def _budget_ok(b: _Builder, config: SyntheticConfig) -> bool:
    return config.max_weight_bytes is None or b.param_bytes <= config.max_weight_bytes


def _transformer_blocks(
    b: _Builder, x: SSAValue, depth: int, config: SyntheticConfig, *, prefix: str = "blocks"
) -> SSAValue:
    rng = b.rng
    _, s, d = _shape(x)
    head_dim = rng.choice([32, 64, 64, 128])
    heads = max(1, d // head_dim)
    while d % heads:
        heads -= 1
    pre_norm = rng.random() < 0.6
    fused = rng.random() < 0.4
    act = rng.choice(["gelu", "gelu", "relu", "silu"])
    ffn_ratio = rng.choice([2, 3, 4, 4])
    mask = None
    if rng.random() < 0.35:
        mask = b.param("causal_mask", (s, s), b.at)
    for i in range(depth):
        mark = b.mark()
        p = f"{prefix}.{i}"
        # A few blocks are feed-forward only (mixer-like), so attention is not always present.
        attn = rng.random() < 0.9
        y = x
        if pre_norm:
            if attn:
                y = b.add(
                    y,
                    b.attention(
                        b.layer_norm(y, f"{p}.ln1"), heads, f"{p}.attn", fused=fused, mask=mask
                    ),
                    p,
                )
            y = b.add(y, b.ffn(b.layer_norm(y, f"{p}.ln2"), ffn_ratio * d, act, f"{p}.mlp"), p)
        else:
            if attn:
                y = b.layer_norm(
                    b.add(y, b.attention(y, heads, f"{p}.attn", fused=fused, mask=mask), p),
                    f"{p}.ln1",
                )
            y = b.layer_norm(b.add(y, b.ffn(y, ffn_ratio * d, act, f"{p}.mlp"), p), f"{p}.ln2")
        if i > 0 and not _budget_ok(b, config):
            b.rollback(mark)
            break
        x = y
    return x


def _build_transformer(
    b: _Builder, config: SyntheticConfig
) -> tuple[list[TensorType], SSAValue, list[SSAValue]]:
    rng = b.rng
    seq = rng.choice([32, 64, 128, 128, 256, 384])
    # At most 512 tokens per batch: attention scores grow with batch x seq^2 and must fit a chip.
    batch = rng.choice([b for b in (1, 1, 1, 2, 4, 8) if b * seq <= 512])
    d = rng.choice([128, 256, 384, 512, 640, 768, 1024])
    depth = rng.randint(1, config.max_blocks)
    if rng.random() < 0.25:
        # Token ids in, through an embedding table and learned positions.
        vocab = rng.choice([1000, 4096, 8192])
        arg = _Arg(TensorType(i64, [batch, seq]))
        table = b.param("embed.weight", (vocab, d))
        x = b.emit(nn.EmbeddingOp(table, arg.value, TensorType(b.at, [batch, seq, d])), "embed")
        x = b.add(x, b.param("pos_embed", (seq, d)), "embed")
    else:
        arg = _Arg(TensorType(b.at, [batch, seq, d]))
        x = arg.value
    x = _transformer_blocks(b, x, depth, config)
    if rng.random() < 0.5:
        x = b.layer_norm(x, "ln_f")
    if rng.random() < 0.3:
        x = b.linear(x, rng.choice([10, 100, 1000]), "head")
    return [cast(TensorType, arg.value.type)], x, [arg.value]


class _Arg:
    """A function argument created before its block: a block with one arg of the type."""

    def __init__(self, t: TensorType) -> None:
        self.block = Block(arg_types=[t])
        self.value: SSAValue = self.block.args[0]


def _conv_stage_blocks(
    b: _Builder,
    x: SSAValue,
    stages: list[int],
    widths: list[int],
    style: str,
    config: SyntheticConfig,
) -> SSAValue:
    count = 0
    for si, (n, w) in enumerate(zip(stages, widths, strict=True)):
        for j in range(n):
            if count >= config.max_blocks:
                return x
            mark = b.mark()
            p = f"layer{si + 1}.{j}"
            stride = 2 if si > 0 and j == 0 and _shape(x)[2] >= 4 else 1
            cin = _shape(x)[1]
            if style == "bottleneck":
                out_c = 4 * w
                y = b.conv_bn(x, w, 1, 1, f"{p}.c1")
                y = b.conv_bn(y, w, 3, stride, f"{p}.c2")
                y = b.conv_bn(y, out_c, 1, 1, f"{p}.c3", relu=False)
            elif style == "depthwise":
                out_c = w
                y = b.conv_bn(x, cin, 3, stride, f"{p}.dw", groups=cin)
                y = b.conv_bn(y, out_c, 1, 1, f"{p}.pw", relu=False)
            else:
                out_c = w
                y = b.conv_bn(x, w, 3, stride, f"{p}.c1")
                y = b.conv_bn(y, w, 3, 1, f"{p}.c2", relu=False)
            shortcut = x
            if stride != 1 or cin != out_c:
                shortcut = b.conv_bn(x, out_c, 1, stride, f"{p}.downsample", relu=False)
            y = b.emit(nn.ReluOp(b.add(y, shortcut, p)), f"{p}.relu")
            if count > 0 and not _budget_ok(b, config):
                b.rollback(mark)
                return x
            x = y
            count += 1
    return x


def _build_convnet(
    b: _Builder, config: SyntheticConfig
) -> tuple[list[TensorType], SSAValue, list[SSAValue]]:
    rng = b.rng
    batch = rng.choice([1, 1, 2, 4, 8])
    image = rng.choice([32, 64, 96, 128, 224])
    t = TensorType(b.at, [batch, 3, image, image])
    arg = _Arg(t)
    width = rng.choice([16, 32, 48, 64])
    big_stem = image >= 96
    x = b.conv_bn(arg.value, width, 7 if big_stem else 3, 2 if big_stem else 1, "stem")
    if big_stem:
        x = b.emit(nn.MaxPool2dOp(x, (3, 3), (2, 2), (1, 1)), "stem.maxpool")
    n_stages = rng.randint(1, 4)
    stages = [rng.randint(1, 4) for _ in range(n_stages)]
    widths = [width * 2**i for i in range(n_stages)]
    style = rng.choice(["basic", "basic", "bottleneck", "depthwise"])
    x = _conv_stage_blocks(b, x, stages, widths, style, config)
    x = b.emit(nn.GlobalAvgPool2dOp(x), "avgpool")
    x = b.reshape(x, _shape(x)[:2], "flatten")
    x = b.linear(x, rng.choice([10, 100, 1000]), "fc")
    return [t], x, [arg.value]


def _build_mlp(
    b: _Builder, config: SyntheticConfig
) -> tuple[list[TensorType], SSAValue, list[SSAValue]]:
    rng = b.rng
    batch = rng.choice([1, 8, 16, 32, 64, 128])
    d_in = rng.choice([64, 256, 784, 1024, 2048])
    t = TensorType(b.at, [batch, d_in])
    arg = _Arg(t)
    x = arg.value
    depth = rng.randint(1, config.max_blocks)
    act = rng.choice(["relu", "gelu", "silu", "tanh"])
    residual = rng.random() < 0.5
    norm = rng.random() < 0.4
    # Up to 2048 wide: a 2048 x 2048 int8 layer is 4 MiB, a third of a tpu-ring8 chip.
    width = rng.choice([256, 512, 1024, 1536, 2048])
    for i in range(depth):
        mark = b.mark()
        p = f"layers.{i}"
        # Widths wander by factors of two, so layer sizes differ within one graph.
        out = (
            width
            if rng.random() < 0.6
            else max(64, width * rng.choice([1, 2]) // rng.choice([1, 2]))
        )
        y = b.layer_norm(x, f"{p}.ln") if norm else x
        y = b.activation(b.linear(y, out, p), act, p)
        if residual and _shape(y) == _shape(x):
            y = b.add(x, y, p)
        if i > 0 and not _budget_ok(b, config):
            b.rollback(mark)
            break
        x = y
    x = b.linear(x, rng.choice([10, 100, 1000]), "head")
    return [t], x, [arg.value]


def _build_hybrid(
    b: _Builder, config: SyntheticConfig
) -> tuple[list[TensorType], SSAValue, list[SSAValue]]:
    rng = b.rng
    batch = rng.choice([1, 1, 2, 4])
    image = rng.choice([64, 96, 128, 192, 224])
    t = TensorType(b.at, [batch, 3, image, image])
    arg = _Arg(t)
    stem_c = rng.choice([16, 32, 64])
    x = b.conv_bn(arg.value, stem_c, 3, 2, "stem")
    # Patches sized so that at most 16 x 16 tokens reach attention.
    patch = next(p for p in (2, 4, 8, 16, 32) if (image // 2) % p == 0 and image // 2 // p <= 16)
    d = rng.choice([128, 192, 256, 384, 512, 768])
    w = b.param("patch_embed.weight", (d, stem_c, patch, patch))
    x = b.emit(nn.Conv2dOp(x, w, (patch, patch)), "patch_embed")
    _, _, h, wd = _shape(x)
    x = b.reshape(x, (batch, d, h * wd), "patch_embed")
    x = b.transpose(x, (0, 2, 1), "patch_embed")
    x = b.add(x, b.param("pos_embed", (h * wd, d)), "patch_embed")
    depth = rng.randint(1, config.max_blocks)
    x = _transformer_blocks(b, x, depth, config)
    x = b.layer_norm(x, "ln")
    x = b.emit(nn.ReduceMeanOp(x, [1]), "pool")
    x = b.linear(x, rng.choice([10, 100, 1000]), "head")
    return [t], x, [arg.value]


_BUDGET_ATTEMPTS = 32

_FAMILIES = {
    "transformer": _build_transformer,
    "convnet": _build_convnet,
    "mlp": _build_mlp,
    "hybrid": _build_hybrid,
}


def random_graph(
    seed: int, kind: str | None = None, config: SyntheticConfig | None = None
) -> ModuleOp:
    """One seeded random graph: a module with one `func.func @synthetic_<kind>_<seed>`."""
    config = config or SyntheticConfig()
    unknown = [k for k in ([kind] if kind else config.kinds) if k not in _FAMILIES]
    if unknown:
        raise ValueError(f"unknown graph kind {unknown[0]!r}: expected one of {', '.join(KINDS)}")
    if config.max_blocks < 1:
        raise ValueError(f"max_blocks must be >= 1, got {config.max_blocks}")
    weight_type = parse_dtype(config.weight_dtype)
    act_type = parse_dtype(config.activation_dtype)
    assert weight_type is not None and act_type is not None, "synthetic graphs need concrete dtypes"
    chosen = kind or random.Random(f"chiplex-synthetic-{seed}").choice(config.kinds)
    best: tuple[_Builder, list[TensorType], SSAValue, list[SSAValue]] | None = None
    # Even one block may overflow the budget (a wide layer): redraw the sizes, deterministically,
    # and keep the smallest graph if no draw fits.
    for attempt in range(_BUDGET_ATTEMPTS):
        rng = random.Random(f"chiplex-synthetic-{seed}-{chosen}-{attempt}")
        b = _Builder(rng, weight_type, act_type)
        arg_types, result, args = _FAMILIES[chosen](b, config)
        if best is None or b.param_bytes < best[0].param_bytes:
            best = (b, arg_types, result, args)
        if _budget_ok(b, config):
            break
    assert best is not None
    b, arg_types, result, args = best
    kind = chosen
    block = Block(arg_types=arg_types)
    # The builders used stand-in arguments: point every use at the real block's arguments.
    for stand_in, real in zip(args, block.args, strict=True):
        stand_in.replace_all_uses_with(real)
        real.name_hint = "x" if len(args) == 1 else None
    block.add_ops(b.ops)
    block.add_op(func.ReturnOp(result))
    function = func.FuncOp(f"synthetic_{kind}_{seed}", (arg_types, [result.type]), Region(block))
    return ModuleOp([function])


def random_graphs(
    count: int, seed: int = 0, kind: str | None = None, config: SyntheticConfig | None = None
) -> Iterator[ModuleOp]:
    """`count` graphs with consecutive seeds `seed, seed + 1, ...` (a reproducible corpus)."""
    for i in range(count):
        yield random_graph(seed + i, kind, config)
