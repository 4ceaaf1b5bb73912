"""The reference interpreter: every nn op has a meaning, ops agree with torch, bad parameters and
inputs are clear errors, and placed-and-split programs compute bit-identical results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, i64
from xdsl.ir import Block, Region

from chiplex.compile import run_pipeline
from chiplex.errors import ChiplexError
from chiplex.ir import interpret, nn
from chiplex.ir.interpret import (
    McmFunctions,
    NNFunctions,
    erf,
    random_inputs,
    random_parameters,
    run,
)
from chiplex.ir.mcm import MCM, ProgramOp
from chiplex.ir.parse import load_module, parse_module
from chiplex.ir.torch_import import import_with_constants
from chiplex.ir.verify_import import module_parameters
from chiplex.models import bert, example_inputs, gpt2, mlp, resnet, vit
from chiplex.testing import tight_target

ROOT = Path(__file__).parents[1]


def test_every_registered_nn_op_has_an_implementation() -> None:
    implemented = {op_type for op_type, _ in NNFunctions._impls()}
    missing = [op.name for op in nn.NN.operations if op not in implemented]
    assert not missing, f"nn ops without an interpreter method in NNFunctions: {missing}"


def test_every_mcm_op_that_runs_has_an_implementation() -> None:
    implemented = {op_type for op_type, _ in McmFunctions._impls()}
    structural = {"mcm.program", "mcm.chiplet"}  # run by interpret.run's scheduler
    missing = [
        op.name for op in MCM.operations if op not in implemented and op.name not in structural
    ]
    assert not missing


# ---------------------------------------------------------------------------------------------
# Single ops against torch
# ---------------------------------------------------------------------------------------------


def _function(arg_shapes: list[tuple[int, ...]], build) -> ModuleOp:  # type: ignore[no-untyped-def]
    block = Block(arg_types=[TensorType(f32, list(s)) for s in arg_shapes])
    ops = build(*block.args)
    block.add_ops(ops)
    block.add_op(func.ReturnOp(ops[-1].results[0]))
    result_type = ops[-1].results[0].type
    function = func.FuncOp("f", ([a.type for a in block.args], [result_type]), Region(block))
    module = ModuleOp([function])
    module.verify()
    return module


CONVS = [
    dict(strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
    dict(strides=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1),
    dict(strides=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
    dict(strides=(1, 1), padding=(1, 1), dilation=(1, 1), groups=4),
]


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_conv2d_matches_torch(conv: dict) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((8, 4 // conv["groups"], 3, 3)).astype(np.float32)
    module = _function([x.shape, w.shape], lambda a, b: [nn.Conv2dOp(a, b, **conv)])
    (got,) = run(module, [x, w])
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, conv["strides"],
                        conv["padding"], conv["dilation"], conv["groups"]).numpy()  # fmt: skip
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_pools_ignore_padding_like_the_dialect_says() -> None:
    x = np.random.default_rng(1).standard_normal((1, 2, 7, 7)).astype(np.float32)
    module = _function([x.shape], lambda a: [nn.MaxPool2dOp(a, (3, 3), (2, 2), (1, 1))])
    (got,) = run(module, [x])
    np.testing.assert_array_equal(got, F.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy())
    module = _function([x.shape], lambda a: [nn.AvgPool2dOp(a, (3, 3), (2, 2), (1, 1))])
    (got,) = run(module, [x])
    expected = F.avg_pool2d(torch.from_numpy(x), 3, 2, 1, count_include_pad=False).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_erf_is_accurate_to_float32_everywhere() -> None:
    x = np.concatenate(
        [np.linspace(-6, 6, 20001), np.geomspace(1e-8, 0.6, 500), -np.geomspace(1e-8, 0.6, 500)]
    ).astype(np.float32)
    expected = torch.erf(torch.from_numpy(x).double()).numpy()
    rel = np.abs(erf(x) - expected) / np.maximum(np.abs(expected), 1e-30)
    assert rel.max() < 3e-7


def test_gather_embedding_slice_cast_concat() -> None:
    table = np.arange(20, dtype=np.float32).reshape(5, 4)
    ids = np.array([[3, 0], [2, 2]])
    block = Block(arg_types=[TensorType(f32, [5, 4]), TensorType(i64, [2, 2])])
    t, i = block.args
    emb = nn.EmbeddingOp(t, i)
    gat = nn.GatherOp(t, i, axis=1)  # columns: [5, 2, 2]
    sl = nn.SliceOp(emb, [0, 1, 0], [2, 1, 2], [1, 1, 2])
    ints = nn.CastOp(sl, TensorType(i64, [2, 1, 2]))
    flat = nn.ReshapeOp(gat, TensorType(f32, [5, 4]))
    cat = nn.ConcatOp([flat, t], axis=0)
    block.add_ops([emb, gat, sl, ints, flat, cat])
    block.add_op(func.ReturnOp(emb, ints, cat))
    types = [emb.result.type, ints.result.type, cat.result.type]
    module = ModuleOp([func.FuncOp("f", ([t.type, i.type], types), Region(block))])
    module.verify()
    got_emb, got_ints, got_cat = run(module, [table, ids])
    np.testing.assert_array_equal(got_emb, table[ids])
    assert got_ints.dtype == np.int64
    np.testing.assert_array_equal(got_ints, table[ids][:, 1:2, ::2].astype(np.int64))
    np.testing.assert_array_equal(got_cat[:5], table[:, ids].reshape(5, 4))


# ---------------------------------------------------------------------------------------------
# Parameters and inputs: clear errors
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_module() -> ModuleOp:
    return load_module(ROOT / "examples" / "models" / "mlp.mlir")


def test_parameters_are_state_dict_tensors_seen_through_torch_view(mlp_module: ModuleOp) -> None:
    params = random_parameters(mlp_module)
    assert params["layers.0.weight"].shape == (2048, 1024)  # [out, in] as torch stores it
    x = random_inputs(mlp_module)
    (got,) = run(mlp_module, x, params)
    h = torch.from_numpy(x[0])
    for i in range(4):
        h = F.relu(F.linear(h, torch.from_numpy(params[f"layers.{i}.weight"]),
                            torch.from_numpy(params[f"layers.{i}.bias"])))  # fmt: skip
    expected = F.linear(
        h, torch.from_numpy(params["head.weight"]), torch.from_numpy(params["head.bias"])
    )
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_a_missing_parameter_is_named(mlp_module: ModuleOp) -> None:
    params = random_parameters(mlp_module)
    del params["layers.2.bias"], params["head.weight"]
    with pytest.raises(ChiplexError, match=r"2 parameter\(s\) of @mlp not supplied: 'head.weight'"
                       r" \(tensor<2048x1000xi8>\), 'layers.2.bias'"):  # fmt: skip
        run(mlp_module, random_inputs(mlp_module), params)


def test_a_mis_shaped_parameter_is_named(mlp_module: ModuleOp) -> None:
    params = random_parameters(mlp_module)
    params["layers.1.bias"] = np.zeros(7, dtype=np.float32)
    with pytest.raises(
        ChiplexError, match="parameter 'layers.1.bias' has shape 7, but the IR declares 2048"
    ):
        run(mlp_module, random_inputs(mlp_module), params)
    params = random_parameters(mlp_module)
    params["layers.0.weight"] = np.zeros((1024, 2048), dtype=np.float32)  # already transposed
    with pytest.raises(
        ChiplexError,
        match=r"'layers.0.weight' has shape 2048x1024 after torch_view 'permute\(1, 0\)'",
    ):
        run(mlp_module, random_inputs(mlp_module), params)


def test_bad_inputs_and_ids_are_clear_errors(mlp_module: ModuleOp) -> None:
    params = random_parameters(mlp_module)
    with pytest.raises(ChiplexError, match="takes 1 input"):
        run(mlp_module, [], params)
    with pytest.raises(ChiplexError, match="input 0 of @mlp has shape 3x1024, expected 32x1024"):
        run(mlp_module, [np.zeros((3, 1024))], params)
    model = bert(1, 16, 2, seq=4, with_embeddings=True, vocab_size=10)
    ir, consts = import_with_constants(model, example_inputs(model))
    with pytest.raises(
        ChiplexError, match=r"nn.embedding %embeddings.word.embedding: ids hold 10, outside 0..9"
    ):
        run(ir, [np.full((1, 4), 10)], module_parameters(model, consts))


# ---------------------------------------------------------------------------------------------
# Placed and split programs
# ---------------------------------------------------------------------------------------------

SMALL_ZOO = {
    "bert": lambda: bert(2, 64, 4, seq=16),
    "gpt2_tied_head": lambda: gpt2(2, 64, 4, seq=16, with_embeddings=True, vocab_size=50),
    "vit": lambda: vit(32, 8, 2, 64, 4, num_classes=10),
    "resnet_bottleneck": lambda: resnet((1, 2), bottleneck=True, width=8, image=32),
    "mlp": lambda: mlp(32, 64, 3, 10, batch=4),
}


@pytest.mark.parametrize("name", sorted(SMALL_ZOO))
def test_placed_and_split_zoo_models_are_bit_identical(name: str, tmp_path: Path) -> None:
    model = SMALL_ZOO[name]()
    ir, consts = import_with_constants(model, example_inputs(model))
    params = module_parameters(model, consts)
    inputs = random_inputs(ir, seed=3)
    expected = run(ir, inputs, params)
    target = tight_target(ir, tmp_path)
    placed = ir.clone()
    run_pipeline(
        placed,
        f'annotate-costs{{target="{target}"}},place{{strategy=dp}},legalize-placement,insert-transfers',
    )
    between = run(placed, inputs, params)  # one function with send / recv pairs
    run_pipeline(placed, "split-chiplets")
    program = next(op for op in placed.ops if isinstance(op, ProgramOp))
    busy = [c for c in program.chiplets if len(c.block.ops) > 1]
    assert len(busy) >= 2, "the target should force a split"
    got = run(placed, inputs, params)
    for e, b, g in zip(expected, between, got, strict=True):
        assert np.array_equal(e, b) and np.array_equal(e, g)  # bit-identical


def test_chiplets_run_in_dataflow_order_and_deadlocks_are_reported() -> None:
    text = """
    builtin.module {
      mcm.program @p {
        mcm.chiplet 0 {
          %r = mcm.recv from 1 msg 0 bytes 16 : tensor<4xf32>
          %y = nn.neg %r : tensor<4xf32>
          mcm.output %y 0 : tensor<4xf32>
        }
        mcm.chiplet 1 {
          %x = mcm.input 0 : tensor<4xf32>
          %e = nn.exp %x : tensor<4xf32>
          mcm.send %e to 0 msg 0 bytes 16 : tensor<4xf32>
        }
      }
    }
    """
    module = parse_module(text, "p.mlir")
    x = np.arange(4, dtype=np.float32)
    (got,) = run(module, [x])
    np.testing.assert_array_equal(got, -np.exp(x))
    deadlock = text.replace(
        "mcm.input 0 : tensor<4xf32>", "mcm.recv from 0 msg 1 bytes 16 : tensor<4xf32>"
    )
    with pytest.raises(
        ChiplexError,
        match="deadlocks: chiplet 0 waits for message 0, chiplet 1 waits for message 1",
    ):
        run(parse_module(deadlock, "d.mlir"), [])


def test_interpreter_is_deterministic() -> None:
    module = load_module(ROOT / "examples" / "models" / "bert_layer.mlir")
    params, inputs = random_parameters(module, 5), random_inputs(module, 5)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(run(module, inputs, params), run(module, inputs, params), strict=True)
    )
    assert interpret.random_parameters(module, 5).keys() == params.keys()


def test_embedding_shards_read_their_rows_of_the_whole_table() -> None:
    """Two shards of a 6-row table (rows 0..3 and 4..5), chained: the full lookup, with the data
    supplied once under the unsharded name; ids outside a shard pass `partial` through."""
    text = """
    func.func @f(%ids: tensor<2x3xi64>) -> tensor<2x3x2xf32> {
      %s0 = nn.param "t.shard0" {shard_of = "t", shard_axis = 0 : i64, shard_offset = 0 : i64} : tensor<4x2xf32>
      %s1 = nn.param "t.shard1" {shard_of = "t", shard_axis = 0 : i64, shard_offset = 4 : i64} : tensor<2x2xf32>
      %a = nn.embedding_shard %s0, %ids row_offset = 0 : tensor<4x2xf32>, tensor<2x3xi64> -> tensor<2x3x2xf32>
      %b = nn.embedding_shard %s1, %ids, %a row_offset = 4 : tensor<2x2xf32>, tensor<2x3xi64>, tensor<2x3x2xf32> -> tensor<2x3x2xf32>
      func.return %b : tensor<2x3x2xf32>
    }
    """
    module = parse_module(text)
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    ids = np.array([[0, 5, 3], [4, 1, 5]])
    (got,) = run(module, [ids], {"t": table})
    np.testing.assert_array_equal(got, table[ids])
    assert random_inputs(module, 0)[0].max() <= 5  # the shards together bound the ids
    with pytest.raises(ChiplexError, match="not supplied: 't.shard0'"):
        run(module, [ids], {"t.shard0": table[:4]})


def test_compare_cumsum_pad_insert_slice_gather_elements_match_numpy_by_hand() -> None:
    text = """
    func.func @f(%x: tensor<2x3xf32>, %i: tensor<2x2xi64>) -> (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x6xf32>, tensor<2x6xf32>, tensor<2x2xf32>) {
      %z = nn.constant 1.0 : tensor<f32>
      %c = nn.compare "ge" %x, %z : tensor<2x3xf32>, tensor<f32> -> tensor<2x3xi1>
      %s = nn.cumsum %x axis = 1 : tensor<2x3xf32> -> tensor<2x3xf32>
      %p = nn.pad %x low = [0, 1] high = [0, 2] value = 5.000000e-01 : tensor<2x3xf32> -> tensor<2x6xf32>
      %w = nn.insert_slice %x into %p starts = [0, 1] strides = [1, 2] : tensor<2x3xf32>, tensor<2x6xf32> -> tensor<2x6xf32>
      %g = nn.gather_elements %x, %i axis = 1 : tensor<2x3xf32>, tensor<2x2xi64> -> tensor<2x2xf32>
      func.return %c, %s, %p, %w, %g : tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x6xf32>, tensor<2x6xf32>, tensor<2x2xf32>
    }
    """
    x = np.array([[0.5, 1.0, 2.0], [3.0, -1.0, 1.5]], dtype=np.float32)
    i = np.array([[2, 0], [1, 1]])
    c, s, p, w, g = run(parse_module(text), [x, i], {})
    np.testing.assert_array_equal(c, [[False, True, True], [True, False, True]])
    np.testing.assert_array_equal(s, [[0.5, 1.5, 3.5], [3.0, 2.0, 3.5]])
    np.testing.assert_array_equal(
        p, [[0.5, 0.5, 1.0, 2.0, 0.5, 0.5], [0.5, 3.0, -1.0, 1.5, 0.5, 0.5]]
    )
    np.testing.assert_array_equal(
        w, [[0.5, 0.5, 1.0, 1.0, 0.5, 2.0], [0.5, 3.0, -1.0, -1.0, 0.5, 1.5]]
    )
    np.testing.assert_array_equal(g, [[2.0, 0.5], [-1.0, -1.0]])
