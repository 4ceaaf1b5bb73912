"""Regenerate the hand-built examples: `python scripts/gen_examples.py [--out examples]`.

Builds the IR in memory with the xDSL Python API (parsing text is 10x slower than building it) and
prints it: an MLP, one BERT encoder layer, and BERT-base (12 layers, sequence 128, hidden 768), with
int8 weights and bf16 activations. The PyTorch model zoo (examples/models/) holds imported variants.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xdsl.dialects import func
from xdsl.dialects.builtin import BFloat16Type, IntegerType, ModuleOp, TensorType
from xdsl.ir import Block, Region, SSAValue

from chiplex.compile import module_text
from chiplex.ir import nn

ACT = BFloat16Type()
WEIGHT = IntegerType(8)


class ModelBuilder:
    def __init__(self, block: Block) -> None:
        self.block = block

    def insert(self, op, hint: str | None = None) -> SSAValue:  # type: ignore[no-untyped-def]
        self.block.add_op(op)
        result = op.results[0]
        if hint:
            result.name_hint = hint
        return result

    def param(self, name: str, shape: list[int]) -> SSAValue:
        return self.insert(nn.ParamOp(name, TensorType(WEIGHT, shape)), name.replace(".", "_"))

    def linear(self, x: SSAValue, name: str, d_in: int, d_out: int, hint: str) -> SSAValue:
        y = self.insert(nn.MatmulOp(x, self.param(f"{name}.weight", [d_in, d_out])), f"{hint}_mm")
        return self.insert(nn.AddOp(y, self.param(f"{name}.bias", [d_out])), hint)


def _function(name: str, input_shape: list[int], build) -> ModuleOp:  # type: ignore[no-untyped-def]
    arg_type = TensorType(ACT, input_shape)
    block = Block(arg_types=[arg_type])
    block.args[0].name_hint = "x"
    result = build(ModelBuilder(block), block.args[0])
    block.add_op(func.ReturnOp(result))
    function = func.FuncOp(name, ([arg_type], [result.type]), Region(block))
    module = ModuleOp([function])
    module.verify()
    return module


def bert_layer(
    m: ModelBuilder, x: SSAValue, prefix: str, seq: int, hidden: int, heads: int, ffn: int
) -> SSAValue:
    head_dim = hidden // heads
    tag = prefix.replace(".", "")

    def heads_view(v: SSAValue, perm: list[int], hint: str) -> SSAValue:
        r = m.insert(nn.ReshapeOp(v, TensorType(ACT, [1, seq, heads, head_dim])), f"{hint}_heads")
        return m.insert(nn.TransposeOp(r, perm), f"{hint}_t")

    q = heads_view(
        m.linear(x, f"{prefix}.attn.q", hidden, hidden, f"{tag}_q"), [0, 2, 1, 3], f"{tag}_q"
    )
    k = heads_view(
        m.linear(x, f"{prefix}.attn.k", hidden, hidden, f"{tag}_k"), [0, 2, 3, 1], f"{tag}_k"
    )
    v = heads_view(
        m.linear(x, f"{prefix}.attn.v", hidden, hidden, f"{tag}_v"), [0, 2, 1, 3], f"{tag}_v"
    )
    scores = m.insert(nn.BatchMatmulOp(q, k), f"{tag}_scores")
    scale = m.insert(nn.ConstantOp(head_dim**-0.5, TensorType(ACT, [])), f"{tag}_scale")
    scaled = m.insert(nn.MulOp(scores, scale), f"{tag}_scaled")
    probs = m.insert(nn.SoftmaxOp(scaled, -1), f"{tag}_probs")
    context = m.insert(nn.BatchMatmulOp(probs, v), f"{tag}_ctx")
    merged = m.insert(nn.TransposeOp(context, [0, 2, 1, 3]), f"{tag}_ctx_t")
    merged = m.insert(nn.ReshapeOp(merged, TensorType(ACT, [1, seq, hidden])), f"{tag}_ctx_flat")
    attn = m.linear(merged, f"{prefix}.attn.out", hidden, hidden, f"{tag}_attn")
    h = m.insert(nn.AddOp(x, attn), f"{tag}_res1")
    h = m.insert(
        nn.LayerNormOp(
            h, m.param(f"{prefix}.ln1.weight", [hidden]), m.param(f"{prefix}.ln1.bias", [hidden])
        ),
        f"{tag}_ln1",
    )
    up = m.linear(h, f"{prefix}.ffn.w1", hidden, ffn, f"{tag}_ffn1")
    act = m.insert(nn.GeluOp(up), f"{tag}_gelu")
    down = m.linear(act, f"{prefix}.ffn.w2", ffn, hidden, f"{tag}_ffn2")
    out = m.insert(nn.AddOp(h, down), f"{tag}_res2")
    return m.insert(
        nn.LayerNormOp(
            out, m.param(f"{prefix}.ln2.weight", [hidden]), m.param(f"{prefix}.ln2.bias", [hidden])
        ),
        f"{tag}_ln2",
    )


def bert(
    layers: int = 12, seq: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072
) -> ModuleOp:
    def build(m: ModelBuilder, x: SSAValue) -> SSAValue:
        for i in range(layers):
            x = bert_layer(m, x, f"encoder.{i}", seq, hidden, heads, ffn)
        return x

    name = "bert_base" if layers == 12 else f"bert_{layers}layer"
    return _function(name, [1, seq, hidden], build)


def mlp(sizes: tuple[int, ...] = (784, 1024, 1024, 512, 10)) -> ModuleOp:
    def build(m: ModelBuilder, x: SSAValue) -> SSAValue:
        for i, (d_in, d_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
            x = m.linear(x, f"fc{i}", d_in, d_out, f"fc{i}")
            if i < len(sizes) - 2:
                x = m.insert(nn.ReluOp(x), f"relu{i}")
        return m.insert(nn.SoftmaxOp(x, -1), "probs")

    return _function("mlp", [1, sizes[0]], build)


EXAMPLES = {
    "mlp.mlir": lambda: mlp(),
    "bert_layer.mlir": lambda: bert(layers=1),
    "bert_base.mlir": lambda: bert(layers=12),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for filename, make in EXAMPLES.items():
        (args.out / filename).write_text(module_text(make()))
        print(f"wrote {args.out / filename}")


if __name__ == "__main__":
    main()
