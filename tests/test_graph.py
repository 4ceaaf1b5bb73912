"""The graph view: nodes, edges, bytes and flops of a function, as numpy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import load_module, parse_module

ROOT = Path(__file__).parents[1]

SMALL = """
func.func @f(%x: tensor<2x8xbf16>) -> tensor<2x4xbf16> {
  %w = nn.param "fc.weight" : tensor<8x4xi8>
  %y = nn.matmul %x, %w : tensor<2x8xbf16>, tensor<8x4xi8> -> tensor<2x4xbf16>
  %r = nn.relu %y : tensor<2x4xbf16>
  %s = nn.add %r, %y : tensor<2x4xbf16>, tensor<2x4xbf16> -> tensor<2x4xbf16>
  %z = nn.matmul %s, %w2 : tensor<2x4xbf16>, tensor<4x4xi8> -> tensor<2x4xbf16>
  func.return %z : tensor<2x4xbf16>
}
"""


def small_graph():  # type: ignore[no-untyped-def]
    text = SMALL.replace("  %z", '  %w2 = nn.param "out.weight" : tensor<4x4xi8>\n  %z')
    return graph_from_module(parse_module(text, "small.mlir"))


def test_nodes_edges_and_bytes_of_a_small_function() -> None:
    g = small_graph()
    assert g.op_names == ("%y", "%r", "%s", "%z")
    assert g.kinds == ("nn.matmul", "nn.relu", "nn.add", "nn.matmul")
    assert list(zip(g.src.tolist(), g.dst.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (1, 2),
        (2, 3),
    ]
    assert g.weight_bytes.tolist() == [32, 0, 0, 16]
    assert g.output_bytes.tolist() == [16, 16, 16, 16]  # 2x4 bf16
    assert g.input_bytes.tolist() == [32, 0, 0, 0]  # %x from the host
    assert g.activation_in_bytes.tolist() == [32, 16, 32, 16]
    assert g.flops.tolist() == [2 * 2 * 8 * 4, 8, 8, 2 * 2 * 4 * 4]
    assert g.is_matrix.tolist() == [True, False, False, True]
    assert g.param_names[0] == ("fc.weight",)
    assert g.samples_per_microbatch == 2
    assert g.dtypes == ("bf16",) * 4


def test_edges_go_forward_in_topological_order() -> None:
    g = graph_from_module(load_module(ROOT / "examples" / "models" / "bert_base.mlir"))
    assert (g.src < g.dst).all()
    assert np.array_equal(g.topo_order, np.arange(g.num_nodes))
    preds = g.predecessors()
    assert sum(len(p) for p in preds) == g.num_edges


def test_bert_base_weights_equal_its_parameter_bytes() -> None:
    module = load_module(ROOT / "examples" / "models" / "bert_base.mlir")
    g = graph_from_module(module)
    params = 12 * (4 * (768 * 768 + 768) + 768 * 3072 + 3072 + 3072 * 768 + 768 + 4 * 768)
    scale_constants = 12 * 2  # one bf16 scalar per layer: stationary data like a weight
    assert (
        g.weight_bytes.sum() == params + scale_constants
    )  # each param read by exactly one op, int8
    matmul_flops = g.flops[g.is_matrix].sum()
    weight_matmuls = 2 * 128 * 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    attention = 2 * 12 * 2 * 12 * 128 * 128 * 64
    assert matmul_flops == weight_matmuls + attention


def test_non_nn_ops_are_rejected_with_a_clear_error() -> None:
    text = """
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = arith.constant dense<1.0> : tensor<4xf32>
  %y = nn.add %x, %c : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
"""
    with pytest.raises(ChiplexError, match="only nn ops can be placed"):
        graph_from_module(parse_module(text, "arith.mlir"))
