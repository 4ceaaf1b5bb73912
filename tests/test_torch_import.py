"""The PyTorch importer: imported IR computes what the module computes, weights keep their names,
views and casts fold, dtypes follow the options, unsupported ops are listed in one error."""

from __future__ import annotations

import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from torch import nn as tnn
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue

from chiplex.cli import main
from chiplex.compile import module_text
from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import (
    build_model,
    import_module,
    import_with_constants,
    load_factory,
    load_model_spec,
    module_stats,
    parse_dtype,
    parse_input_spec,
)
from chiplex.models import bert, example_inputs, gpt2, mlp, resnet, vit

# ---------------------------------------------------------------------------------------------
# A reference evaluator of nn IR (float32, torch ops), fed with the module's real weights
# ---------------------------------------------------------------------------------------------


def _ints(attr: Any) -> list[int]:
    return list(attr.get_values())


def _stored_param(
    op: nn.ParamOp, model: tnn.Module, consts: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The tensor an nn.param stands for: the state-dict entry seen through `torch_view`, with
    inference batch norm folded into its weight and bias (what nn.batch_norm expects)."""
    shard_of = op.attributes.get("shard_of")  # a shard made by shard-params: part of a param
    name = shard_of.data if shard_of is not None else op.param_name.data  # type: ignore[attr-defined]
    if name in consts:
        return consts[name].float()
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    t = state[name].detach().float()
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    if isinstance(owner, tnn.BatchNorm2d):
        assert owner.running_var is not None and owner.running_mean is not None
        scale = owner.weight.detach() / torch.sqrt(owner.running_var + owner.eps)
        t = scale if leaf == "weight" else owner.bias.detach() - owner.running_mean * scale
    view = op.attributes.get("torch_view")
    if view is not None:
        for kind, args in re.findall(r"(\w+)\(([^)]*)\)", view.data):  # type: ignore[attr-defined]
            dims = [int(a) for a in args.split(",") if a.strip()]
            t = t.permute(*dims) if kind == "permute" else t.reshape(dims)
    if shard_of is not None:
        axis = op.attributes["shard_axis"].value.data  # type: ignore[attr-defined]
        offset = op.attributes["shard_offset"].value.data  # type: ignore[attr-defined]
        size = cast(TensorType, op.result.type).get_shape()[axis]
        t = t.narrow(axis, offset, size)
    assert tuple(t.shape) == tuple(cast(TensorType, op.result.type).get_shape()), name
    return t


def run_ir(
    module: ModuleOp,
    model: tnn.Module,
    inputs: tuple[torch.Tensor, ...],
    consts: dict[str, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    block = function.body.blocks.first
    assert block is not None
    env: dict[SSAValue, torch.Tensor] = dict(zip(block.args, inputs, strict=True))
    consts = consts or {}
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            return [env[v] for v in op.operands]
        env[op.results[0]] = _eval(op, [env[v] for v in op.operands], model, consts)
    raise AssertionError("no func.return")


def _eval(
    op: Operation, xs: list[torch.Tensor], model: tnn.Module, consts: dict[str, torch.Tensor]
) -> torch.Tensor:
    shape = list(cast(TensorType, op.results[0].type).get_shape())
    binary = {
        nn.AddOp: torch.add,
        nn.SubOp: torch.sub,
        nn.MulOp: torch.mul,
        nn.DivOp: torch.div,
        nn.MaxOp: torch.maximum,
        nn.MinOp: torch.minimum,
        nn.PowOp: torch.pow,
    }
    unary = {
        nn.ReluOp: torch.relu,
        nn.GeluOp: F.gelu,
        nn.TanhOp: torch.tanh,
        nn.SigmoidOp: torch.sigmoid,
        nn.ExpOp: torch.exp,
        nn.LogOp: torch.log,
        nn.SqrtOp: torch.sqrt,
        nn.RsqrtOp: torch.rsqrt,
        nn.NegOp: torch.neg,
        nn.ErfOp: torch.erf,
        nn.SiluOp: F.silu,
    }
    if isinstance(op, nn.ParamOp):
        return _stored_param(op, model, consts)
    if isinstance(op, nn.ConstantOp):
        return torch.full(shape, float(op.scalar))
    if type(op) in binary:
        return binary[type(op)](xs[0].float(), xs[1].float())  # type: ignore[operator]
    if type(op) in unary:
        return unary[type(op)](xs[0])  # type: ignore[operator]
    if isinstance(op, nn.MatmulOp | nn.BatchMatmulOp):
        return torch.matmul(xs[0].float(), xs[1].float())
    if isinstance(op, nn.Conv2dOp):
        s, p, d, g = op._props()
        return F.conv2d(xs[0], xs[1], None, list(s), list(p), list(d), g)
    if isinstance(op, nn.CastOp):
        return xs[0].float()
    if isinstance(op, nn.SoftmaxOp):
        return torch.softmax(xs[0], op.axis.value.data)
    if isinstance(op, nn.LayerNormOp):
        g = xs[1]
        return F.layer_norm(xs[0], tuple(g.shape), g, xs[2], op.epsilon.value.data)
    if isinstance(op, nn.BatchNormOp):
        c = [1, -1] + [1] * (xs[0].dim() - 2)
        return xs[0] * xs[1].reshape(c) + xs[2].reshape(c)
    if isinstance(op, nn.ReduceSumOp | nn.ReduceMeanOp | nn.ReduceMaxOp):
        axes, keep = _ints(op.axes), op.keepdims is not None
        if isinstance(op, nn.ReduceMaxOp):
            return torch.amax(xs[0], axes, keep)
        fn = torch.sum if isinstance(op, nn.ReduceSumOp) else torch.mean
        return fn(xs[0], axes, keepdim=keep)
    if isinstance(op, nn.ReshapeOp):
        return xs[0].reshape(shape)
    if isinstance(op, nn.TransposeOp):
        return xs[0].permute(*_ints(op.perm))
    if isinstance(op, nn.ConcatOp):
        return torch.cat([x.float() for x in xs], op.axis.value.data)
    if isinstance(op, nn.SliceOp):
        index = tuple(
            slice(st, st + (sz - 1) * sd + 1, sd)
            for st, sz, sd in zip(
                _ints(op.starts), _ints(op.sizes), op.stride_values(), strict=True
            )
        )
        return xs[0][index]
    if isinstance(op, nn.EmbeddingOp):
        return F.embedding(xs[1].long(), xs[0])
    if isinstance(op, nn.GatherOp):
        axis = op.axis.value.data
        return torch.index_select(xs[0], axis, xs[1].long().reshape(-1)).reshape(shape)
    if isinstance(op, nn.MaxPool2dOp):
        return F.max_pool2d(xs[0], _ints(op.kernel), _ints(op.strides), _ints(op.padding))
    if isinstance(op, nn.AvgPool2dOp):
        k, s, p = _ints(op.kernel), _ints(op.strides), _ints(op.padding)
        return F.avg_pool2d(xs[0], k, s, p, count_include_pad=False)
    if isinstance(op, nn.GlobalAvgPool2dOp):
        return xs[0].mean((2, 3), keepdim=True)
    if isinstance(op, nn.CompareOp):
        return getattr(torch, op.predicate.data)(xs[0], xs[1])
    if isinstance(op, nn.CumsumOp):
        return torch.cumsum(xs[0], op.axis.value.data)
    if isinstance(op, nn.GatherElementsOp):
        return torch.gather(xs[0], op.axis.value.data, xs[1].long())
    if isinstance(op, nn.PadOp):
        pads = [p for lo, hi in zip(_ints(op.low), _ints(op.high), strict=True) for p in (lo, hi)]
        pairs = [pads[i : i + 2] for i in range(0, len(pads), 2)][::-1]
        return F.pad(xs[0], [p for pair in pairs for p in pair], value=op.value.value.data)
    if isinstance(op, nn.InsertSliceOp):
        out = xs[1].clone().float()
        index = tuple(
            slice(st, st + (sz - 1) * sd + 1, sd)
            for st, sz, sd in zip(_ints(op.starts), xs[0].shape, op.stride_values(), strict=True)
        )
        out[index] = xs[0].float()
        return out
    if isinstance(op, nn.EmbeddingShardOp):
        table, ids = xs[0], xs[1].long()
        out = xs[2].clone().float() if len(xs) > 2 else torch.zeros(shape)
        offset = op.row_offset.value.data
        owned = (ids >= offset) & (ids < offset + table.shape[0])
        out[owned] = table[ids[owned] - offset].float()
        return out
    raise AssertionError(f"no reference semantics for {op.name}")


def check_equivalent(
    model: tnn.Module, inputs: tuple[torch.Tensor, ...], *, atol: float = 1e-4
) -> ModuleOp:
    """Import with torch's own dtypes and compare the evaluated IR with the module's output."""
    module, consts = import_with_constants(model, inputs, weight_dtype=None, activation_dtype=None)
    with torch.no_grad():
        expected = model.eval()(*inputs)
        got = run_ir(module, model, inputs, consts)
    expected_list = list(expected) if isinstance(expected, tuple | list) else [expected]
    assert len(got) == len(expected_list)
    for g, e in zip(got, expected_list, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g.float(), e.float(), atol=atol, rtol=1e-4)
    return module


def ops_named(module: ModuleOp, name: str) -> list[Operation]:
    return [op for op in module.walk() if op.name == name]


# ---------------------------------------------------------------------------------------------
# Zoo families, small: the IR computes the module's function
# ---------------------------------------------------------------------------------------------

SMALL_MODELS = {
    "bert": lambda: bert(2, 64, 4, seq=16),
    "bert_embeddings": lambda: bert(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50),
    "gpt2": lambda: gpt2(2, 64, 4, seq=16),
    "gpt2_tied_head": lambda: gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50),
    "vit": lambda: vit(32, 8, 2, 64, 4, num_classes=10),
    "resnet_basic": lambda: resnet((1, 1), width=8, image=32, num_classes=10),
    "resnet_bottleneck": lambda: resnet((1, 2), bottleneck=True, width=8, image=32),
    "mlp": lambda: mlp(32, 64, 3, 10, batch=4),
}


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_small_zoo_models_compute_what_the_module_computes(name: str) -> None:
    model = SMALL_MODELS[name]()
    check_equivalent(model, example_inputs(model))


def test_weights_keep_their_state_dict_names_and_element_counts() -> None:
    model = bert(2, 64, 4, seq=16)
    module = import_module(model, example_inputs(model))
    params = {op.param_name.data: op for op in ops_named(module, "nn.param")}  # type: ignore[attr-defined]
    assert set(params) == {n for n, _ in model.named_parameters()}
    for n, p in model.named_parameters():
        t = cast(TensorType, params[n].results[0].type)
        assert math.prod(t.get_shape()) == p.numel()
        assert str(t.get_element_type()) == "i8"
    # Linear weights are stored [in, out] for nn.matmul, and say so.
    w1 = params["layers.0.ffn.w1.weight"]
    assert cast(TensorType, w1.results[0].type).get_shape() == (64, 256)
    assert w1.attributes["torch_view"].data == "permute(1, 0)"  # type: ignore[attr-defined]


def test_results_get_readable_names_from_the_module_path() -> None:
    model = bert(1, 64, 4, seq=16)
    g = graph_from_module(import_module(model, example_inputs(model)))
    assert "%layers.0.ffn.w1.matmul" in g.op_names
    assert "%layers.0.attn.softmax" in g.op_names
    assert len(set(g.op_names)) == len(g.op_names)


def test_round_trip_through_text() -> None:
    model = gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50)
    module = import_module(model, example_inputs(model))
    again = parse_module(module_text(module), "gpt2.mlir")
    a, b = graph_from_module(module), graph_from_module(again)
    assert a.num_nodes == b.num_nodes and a.num_edges == b.num_edges
    assert a.flops.sum() == b.flops.sum() and a.weight_bytes.sum() == b.weight_bytes.sum()
    assert module_text(again) == module_text(module)


# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "size"), [("i8", 1), ("bf16", 2), ("f16", 2), ("f32", 4)])
def test_weight_dtype_sets_the_bytes_of_every_parameter(dtype: str, size: int) -> None:
    model = resnet((1,), width=8, image=32)
    stats = module_stats(import_module(model, example_inputs(model), weight_dtype=dtype))
    count = sum(p.numel() for p in model.parameters())
    assert stats.param_elements == count
    assert stats.param_bytes == count * size


def test_activation_dtype_applies_to_float_values_and_integers_stay_integers() -> None:
    model = bert(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50)
    module = import_module(model, example_inputs(model), activation_dtype="f16")
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    assert [str(t) for t in function.function_type.inputs.data] == ["tensor<1x16xi64>"]
    weights: set[SSAValue] = set()
    for op in module.walk():
        if not isinstance(op, nn.NNOp) or isinstance(op, nn.ConstantOp):
            continue
        # Data movement on weights alone (slicing the position table) keeps the weight dtype.
        if isinstance(op, nn.ParamOp) or all(v in weights for v in op.operands):
            weights.add(op.results[0])
            assert str(cast(TensorType, op.results[0].type).get_element_type()) == "i8", op.name
        else:
            assert str(cast(TensorType, op.results[0].type).get_element_type()) == "f16", op.name


def test_keep_dtypes() -> None:
    model = mlp(16, 32, 1, 4, batch=2)
    module = import_module(model, example_inputs(model), weight_dtype="keep", activation_dtype=None)
    assert "bf16" not in module_text(module) and "i8" not in module_text(module)
    assert "f32" in module_text(module)


def test_bad_dtype_names_are_user_errors() -> None:
    assert str(parse_dtype("int8")) == "i8"
    assert parse_dtype("keep") is None
    with pytest.raises(ChiplexError, match="unknown dtype 'int3'"):
        parse_dtype("int3")


# ---------------------------------------------------------------------------------------------
# Op coverage beyond the zoo
# ---------------------------------------------------------------------------------------------


class _Kitchen(tnn.Module):
    """Ops the zoo does not use: SDPA (causal, masked), fused norms by hand, pooling variants."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = tnn.Linear(16, 48)
        self.conv = tnn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.norm = tnn.LayerNorm(16, elementwise_affine=False)
        self.register_buffer("keep", torch.ones(8, 8, dtype=torch.bool).tril())

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.proj(x).view(2, 8, 3, 16).unbind(2)
        q, k, v = (t.unsqueeze(1) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        b = F.scaled_dot_product_attention(q, k, v, attn_mask=self.keep)
        scores = (q @ k.transpose(-1, -2)).masked_fill(~self.keep, float("-inf"))
        c = scores.softmax(-1) @ v
        h = (a + b + c).squeeze(1)
        # RMS-style and variance-based normalisation written out.
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        h = (h - h.mean(-1, keepdim=True)) / torch.sqrt(
            h.var(-1, keepdim=True, unbiased=False) + 1e-5
        )
        h = self.norm(F.silu(h)) + torch.zeros(2, 8, 16)
        h = torch.cat([h[:, :4], h[:, 4:].clamp(-1, 1)], dim=1).amax(-1)
        y = F.hardswish(self.conv(img))
        y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
        y = F.adaptive_avg_pool2d(y, (2, 2)).flatten(1).contiguous().clone()
        return h, y[:, 0:6] * 0.5 - 1


def test_attention_masks_norms_and_pooling_compute_what_the_module_computes() -> None:
    torch.manual_seed(0)
    model = _Kitchen()
    inputs = (torch.randn(2, 8, 16), torch.randn(2, 4, 8, 8))
    module = check_equivalent(model, inputs)
    # The boolean buffer became additive masks, stored once per distinct tensor.
    names = {op.param_name.data for op in ops_named(module, "nn.param")}  # type: ignore[attr-defined]
    assert {"proj.weight", "proj.bias", "conv.weight", "conv.bias"} <= names
    assert "causal_mask" in names


def test_views_and_no_op_casts_fold_away() -> None:
    class Views(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = tnn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x.contiguous().clone().to(torch.float32)).view(4, 8).reshape(4, 8)
            return y.unsqueeze(0).squeeze(0).t().t().detach().float()

    module = import_module(Views(), (torch.randn(4, 8),))
    kinds = [op.name for op in module.walk() if isinstance(op, nn.NNOp)]
    assert kinds == ["nn.param", "nn.matmul", "nn.param", "nn.add"]


def test_real_casts_and_reshapes_stay() -> None:
    class Casts(tnn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return (ids.float() * 2).reshape(2, 2, 2)

    module = import_module(Casts(), (torch.zeros(2, 4, dtype=torch.int64),))
    assert [
        op.name for op in module.walk() if isinstance(op, nn.NNOp) and op.name != "nn.constant"
    ] == [
        "nn.cast",
        "nn.mul",
        "nn.reshape",
    ]


def test_tied_weights_are_stored_once() -> None:
    model = gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=50)
    module = import_module(model, example_inputs(model))
    names = [op.param_name.data for op in ops_named(module, "nn.param")]  # type: ignore[attr-defined]
    assert names.count("wte.weight") == 1
    stats = module_stats(module)
    mask = 16 * 16 * 2  # the causal mask buffer, in bf16
    assert stats.param_bytes == sum(p.numel() for p in model.parameters()) + mask


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

BAD_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            y = self.fc(x)
            y = torch.cumprod(y, dim=-1)
            z = torch.sort(y, dim=-1).values
            w = torch.cumprod(z, dim=0)
            return nn.functional.hardswish(w) + torch.nn.functional.silu(y)


    def make():
        return Bad()
    """
)


@pytest.fixture
def bad_model_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad_model.py"
    path.write_text(BAD_MODULE)
    return path


def test_unsupported_ops_are_all_listed_with_counts_and_locations(bad_model_file: Path) -> None:
    model = load_factory(f"{bad_model_file}:make")
    with pytest.raises(ChiplexError) as info:
        import_module(model, (torch.randn(2, 8),))
    message = str(info.value)
    assert message.startswith("cannot import Bad: 2 unsupported ATen ops (3 uses):")
    assert f"aten.cumprod.default: 2 (first at {bad_model_file}:13)" in message
    # sort cannot map whatever its arguments: the report says why (its result is positions).
    assert "aten.sort.default (its result is positions in the data" in message
    assert f"select with masks (torch.where)): 1 (first at {bad_model_file}:14)" in message
    # hardswish and silu are supported (hardswish through the core-ATen decomposition).
    assert "hardswish" not in message and "silu" not in message


def test_cli_reports_unsupported_ops_with_exit_code_1(
    bad_model_file: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "bad.mlir"
    code = main(["import-torch", f"{bad_model_file}:make", "--input-shape", "2x8", "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "aten.cumprod.default: 2 (first at" in err and "aten.sort.default (its result" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_export_failures_are_user_errors() -> None:
    class DataDependent(tnn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return x * 2
            return x

    with pytest.raises(ChiplexError, match="torch.export could not capture DataDependent"):
        import_module(DataDependent(), (torch.randn(3),))


def test_importing_keeps_the_modules_training_flag() -> None:
    model = mlp(8, 16, 1, 4, batch=2).train()
    import_module(model, example_inputs(model))
    assert model.training


# ---------------------------------------------------------------------------------------------
# Specs, input shapes, CLI
# ---------------------------------------------------------------------------------------------


def test_parse_input_spec() -> None:
    a, b = parse_input_spec(["1x128", "2x3x4"], ["int64", "float32"])
    assert a.shape == (1, 128) and a.dtype == torch.int64
    assert b.shape == (2, 3, 4) and b.dtype == torch.float32
    c, d = parse_input_spec("4x4,2", "bf16")
    assert c.dtype == d.dtype == torch.bfloat16 and d.shape == (2,)
    with pytest.raises(ChiplexError, match="bad input shape '1xq'"):
        parse_input_spec(["1xq"])
    with pytest.raises(ChiplexError, match="2 input shapes but 3 dtypes"):
        parse_input_spec(["1", "2"], ["int64", "int64", "int64"])
    with pytest.raises(ChiplexError, match="unknown input dtype 'qint'"):
        parse_input_spec(["1"], ["qint"])


def test_specs_name_zoo_models_factories_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, name = build_model("chiplex.models:bert(1, hidden=32, heads=2, seq=8)")
    assert name == "bert" and len(model.layers) == 1  # type: ignore[arg-type]
    assert build_model("mlp")[1] == "mlp"
    assert build_model("chiplex.models:mlp")[1] == "mlp"
    path = tmp_path / "mine.py"
    path.write_text("import torch\n\ndef tiny():\n    return torch.nn.Linear(4, 2)\n")
    assert isinstance(load_factory(f"{path}:tiny"), torch.nn.Linear)
    with pytest.raises(ChiplexError, match="unknown model 'nope'"):
        load_factory("nope")
    with pytest.raises(ChiplexError, match=r"mine.py is a Python file: .*'\S*mine.py:FACTORY'"):
        load_factory(str(path))
    with pytest.raises(ChiplexError, match="gone.py: no such file"):
        load_factory(str(tmp_path / "gone.py"))
    with pytest.raises(ChiplexError, match="cannot import no_such_pkg"):
        load_factory("no_such_pkg.mod:f")
    with pytest.raises(ChiplexError, match="has no attribute 'missing'"):
        load_factory("chiplex.models:missing")
    (tmp_path / "beside_me.py").write_text(
        "import torch\n\ndef tiny():\n    return torch.nn.Linear(4, 2)\n"
    )
    with (
        monkeypatch.context() as patch
    ):  # a module in the working directory, as `python -m` finds it
        patch.chdir(tmp_path)
        patch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
        assert isinstance(load_factory("beside_me:tiny"), torch.nn.Linear)
    (tmp_path / "three.py").write_text("def three():\n    return 3\n")
    with pytest.raises(ChiplexError, match="returned int, not a torch.nn.Module"):
        load_factory(f"{tmp_path / 'three.py'}:three")
    with pytest.raises(ChiplexError, match="factory arguments must be Python literals"):
        load_factory("chiplex.models:bert(hidden=x)")


def test_load_model_spec_uses_example_inputs_or_given_shapes(tmp_path: Path) -> None:
    module = load_model_spec(
        "chiplex.models:bert(1, hidden=32, heads=2, seq=8)", None, None, "bf16"
    )
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    assert function.sym_name.data == "bert"
    assert str(function.function_type.inputs.data[0]) == "tensor<1x8x32xbf16>"
    assert module_stats(module).param_bytes == 2 * sum(
        p.numel()
        for p in load_factory("chiplex.models:bert(1, hidden=32, heads=2, seq=8)").parameters()
    )
    ids = load_model_spec(
        "chiplex.models:bert(1, hidden=32, heads=2, with_embeddings=True, vocab_size=20)",
        ["2x4"],
        ["int64"],
        "i8",
    )
    assert "tensor<2x4xi64>" in module_text(ids)
    path = tmp_path / "plain.py"
    path.write_text("import torch\n\ndef tiny():\n    return torch.nn.Linear(4, 2)\n")
    with pytest.raises(ChiplexError, match="has no example_inputs"):
        load_model_spec(f"{path}:tiny", None, None, "i8")
    assert "tensor<3x4xbf16>" in module_text(load_model_spec(f"{path}:tiny", ["3x4"], None, "i8"))


def test_the_number_of_input_shapes_is_checked_against_forward(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(
        "import torch\n\n"
        "class Two(torch.nn.Module):\n"
        "    def forward(self, ids, mask, scale=None):\n"
        "        return ids * mask\n\n"
        "def make():\n"
        "    return Two()\n"
    )
    takes = "Two.forward takes 2 to 3 inputs (ids, mask)"
    with pytest.raises(ChiplexError, match=re.escape(f"{takes}, but --input-shape gave 1")):
        load_model_spec(f"{path}:make", ["2x4"], None, "i8")
    with pytest.raises(ChiplexError, match=re.escape(f"{takes}, but --input-shape gave 4")):
        load_model_spec(f"{path}:make", ["2x4"] * 4, None, "i8")
    with pytest.raises(ChiplexError, match=re.escape(f"per input ({takes}), like")):
        load_model_spec(f"{path}:make", None, None, "i8")
    assert "tensor<2x4xbf16>, tensor<2x4xbf16>" in module_text(
        load_model_spec(f"{path}:make", ["2x4", "2x4"], None, "i8")
    )


def test_cli_writes_the_ir_and_refuses_to_overwrite(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "m.mlir"
    spec = "chiplex.models:mlp(16, 32, 2, 4, batch=2)"
    assert main(["import-torch", spec, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"imported .*: 8 ops, 6 params \(1,732 elements", err), err
    text = out.read_text()
    assert "func.func @mlp(%x: tensor<2x16xbf16>)" in text
    assert graph_from_module(parse_module(text)).num_nodes == 8
    assert main(["import-torch", spec, "-o", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["import-torch", spec, "-o", str(out), "--force", "--weight-dtype", "bf16"]) == 0
    assert "xbf16>" in out.read_text() and "xi8>" not in out.read_text()


def test_cli_prints_to_stdout_and_takes_shapes_and_dtypes(capsys: Any) -> None:
    spec = "chiplex.models:bert(1, hidden=32, heads=2, with_embeddings=True, vocab_size=20)"
    assert (
        main(["import-torch", spec, "--input-shape", "1x8", "--dtype", "int64", "--name", "enc"])
        == 0
    )
    out = capsys.readouterr().out
    assert "func.func @enc(%x: tensor<1x8xi64>)" in out
    parse_module(out)


def test_cli_rejects_bad_options_before_importing(capsys: Any, tmp_path: Path) -> None:
    assert (
        main(["import-torch", "mlp", "--weight-dtype", "int3", "-o", str(tmp_path / "x.mlir")]) == 1
    )
    assert "unknown dtype 'int3'" in capsys.readouterr().err
    assert main(["import-torch", "mlp", "--dtype", "int64"]) == 1
    assert "--dtype needs --input-shape" in capsys.readouterr().err


def test_what_a_module_prints_to_stderr_while_exported_still_reaches_stderr(capsys: Any) -> None:
    from chiplex.ir.torch_import.capture import export_program

    class Loud(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("hello from forward", file=sys.stderr)
            return x * 2

    export_program(Loud(), (torch.randn(2, 3),))
    assert "hello from forward" in capsys.readouterr().err


def test_compile_of_a_python_file_asks_for_its_factory(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "mine.py"
    path.write_text("import torch\n\ndef tiny():\n    return torch.nn.Linear(4, 2)\n")
    assert main(["compile", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"'{path}:FACTORY'" in err and "unknown operation" not in err
    assert not (tmp_path / "out").exists()


def test_compile_accepts_a_torch_spec(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("chiplex.compile")
    out = tmp_path / "out"
    spec = "chiplex.models:bert(2, hidden=64, heads=4, seq=16)"
    assert main(["compile", spec, "--target", "tpu-ring8", "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    assert (out / "schedule.json").exists()


def test_compile_takes_the_activation_dtype_and_refuses_torch_options_for_ir(
    tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "mine.py"
    path.write_text("import torch\n\ndef tiny():\n    return torch.nn.Linear(4, 2)\n")
    out = tmp_path / "out"
    spec = f"{path}:tiny"
    args = ["compile", spec, "--input-shape", "3x4", "--activation-dtype", "f32", "-o", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    placed = (out / "placed.mlir").read_text()
    assert "tensor<3x2xf32>" in placed and "bf16" not in placed
    # An IR file's types are written in it: an option that would be ignored is an error.
    ir = out / "placed.mlir"
    assert main(["compile", str(ir), "--weight-dtype", "bf16", "-o", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert f"--weight-dtype applies to a PyTorch module only; {ir} is an IR file" in err
    assert main(["search", str(ir), "--input-shape", "1x4", "--dtype", "int64"]) == 1
    assert "--input-shape, --dtype apply to a PyTorch module only" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("target", ["tpu-ring8", "simba-6x6"])
def test_small_imports_compile_for_both_targets(target: str) -> None:
    compile_mod = pytest.importorskip("chiplex.compile")
    for make in (SMALL_MODELS["gpt2"], SMALL_MODELS["resnet_basic"]):
        model = make()
        result = compile_mod.compile_module(import_module(model, example_inputs(model)), target)
        assert result.schedule is not None
        assert (result.placement >= 0).all()


def test_module_is_importable_from_the_cli_entry_point() -> None:
    # Importing the command module must stay cheap: torch loads only inside the handler.
    import importlib

    sys.modules.pop("chiplex.commands.import_torch", None)
    mod = importlib.import_module("chiplex.commands.import_torch")
    assert "torch" not in vars(mod)
