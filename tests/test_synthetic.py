"""Synthetic NN-shaped graphs: seeded, valid, varied, within budget, and compilable."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chiplex.compile import module_text
from chiplex.ir import nn
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.synthetic import KINDS, SyntheticConfig, random_graph, random_graphs
from chiplex.ir.torch_import import module_stats


def test_the_same_seed_gives_the_same_graph() -> None:
    for seed in range(5):
        assert module_text(random_graph(seed)) == module_text(random_graph(seed))
    texts = {module_text(m) for m in random_graphs(8, seed=100)}
    assert len(texts) == 8


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_valid_graphs(kind: str) -> None:
    for seed in range(6):
        module = random_graph(seed, kind)
        module.verify()
        g = graph_from_module(module)
        assert g.name == f"synthetic_{kind}_{seed}"
        assert g.num_nodes > 0 and (g.src < g.dst).all()
        assert g.is_matrix.any(), "every family has matmuls or convolutions"
        assert g.weight_bytes.sum() > 0
        names = [op.param_name.data for op in module.walk() if isinstance(op, nn.ParamOp)]
        assert len(names) == len(set(names)), "parameter names are unique"
        # Every node but the output feeds another node: no dead ops.
        has_successor = np.zeros(g.num_nodes, dtype=bool)
        has_successor[g.src] = True
        assert has_successor[:-1].all()


def test_families_and_sizes_vary() -> None:
    graphs = [graph_from_module(m) for m in random_graphs(40, seed=0)]
    kinds = Counter(g.name.split("_")[1] for g in graphs)
    assert set(kinds) == set(KINDS)
    assert len({g.num_nodes for g in graphs}) > 15
    assert len({int(g.weight_bytes.sum()) for g in graphs}) > 30
    ops = Counter(k for g in graphs for k in g.kinds)
    for op in (
        "nn.matmul",
        "nn.batch_matmul",
        "nn.conv2d",
        "nn.softmax",
        "nn.layer_norm",
        "nn.batch_norm",
    ):
        assert ops[op] > 0, op


def test_max_weight_bytes_is_respected() -> None:
    budget = 2 << 20
    config = SyntheticConfig(max_weight_bytes=budget)
    for seed in range(30):
        assert module_stats(random_graph(seed, config=config)).param_bytes <= budget, seed


def test_dtypes_and_depth_follow_the_config() -> None:
    config = SyntheticConfig(
        kinds=("transformer",), max_blocks=1, weight_dtype="bf16", activation_dtype="f16"
    )
    module = random_graph(3, config=config)
    text = module_text(module)
    assert "xi8>" not in text and "xbf16>" in text and "xf16>" in text
    assert not any("blocks.1." in name for name in graph_from_module(module).op_names)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown graph kind 'rnn'"):
        random_graph(0, "rnn")
    with pytest.raises(ValueError, match="max_blocks"):
        random_graph(0, config=SyntheticConfig(max_blocks=0))


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**31))
def test_any_seed_round_trips_through_text(seed: int) -> None:
    module = random_graph(seed, config=SyntheticConfig(max_blocks=4))
    again = parse_module(module_text(module), f"synthetic_{seed}.mlir")
    a, b = graph_from_module(module), graph_from_module(again)
    assert a.num_nodes == b.num_nodes and a.num_edges == b.num_edges
    assert a.flops.sum() == b.flops.sum()


@pytest.mark.parametrize("target", ["tpu-ring8", "simba-6x6"])
def test_graphs_within_budget_compile(target: str) -> None:
    compile_mod = pytest.importorskip("chiplex.compile")
    config = SyntheticConfig(max_blocks=4, max_weight_bytes=8 << 20)
    for seed in range(4):
        result = compile_mod.compile_module(random_graph(seed, config=config), target)
        assert result.schedule is not None
