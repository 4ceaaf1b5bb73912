"""dp over several topological orders: the same contiguous-split DP, on orders that open cheaper cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import load_module
from chiplex.passes.strategies import _candidate_orders, _dp_split, place_dp, reorder_graph
from chiplex.targets.cost import estimate
from chiplex.targets.legality import check_placement, resolve_rules
from chiplex.targets.target import load_target
from chiplex.testing import nn_graph

EXAMPLES = Path(__file__).parents[1] / "examples" / "models"


def test_every_candidate_order_is_topological_and_reordering_keeps_the_graph() -> None:
    rng = np.random.default_rng(3)
    graph = nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), 40, shared_params=True)
    for order in _candidate_orders(graph)[1:]:
        assert order is not None and sorted(order.tolist()) == list(range(graph.num_nodes))
        position = np.argsort(order)
        assert (position[graph.src] < position[graph.dst]).all()
        again = reorder_graph(graph, order)
        assert (again.src < again.dst).all()
        assert again.total_weight_bytes == graph.total_weight_bytes
        assert again.flops.sum() == graph.flops.sum()
        assert sorted(again.private_weight_bytes.tolist()) == sorted(
            graph.private_weight_bytes.tolist()
        )


def gain_over_own_order(model: str, target_name: str) -> tuple[float, np.ndarray]:
    """dp's estimate against the DP on the graph's own order alone, and dp's (legal) placement."""
    graph = graph_from_module(load_module(EXAMPLES / f"{model}.mlir"))
    target = load_target(target_name)
    own_order = _dp_split(graph, target, resolve_rules(graph, target))
    assert own_order is not None
    placement = place_dp(graph, target)
    assert not check_placement(graph, target, placement)
    own = estimate(graph, target, own_order).period_s
    return own / estimate(graph, target, placement).period_s, placement


def test_dp_cuts_resnet_projection_blocks_where_little_is_live() -> None:
    # ResNet-50 on the 4x4 mesh: in the importer's order every cut inside the first projection block
    # sends the block's 1.6 MB input, which caps dp at one slow stage (2,661 samples/s). In the
    # fewest-live-bytes order the shortcut's conv runs first and a cut after the main path's 3x3 conv
    # sends 1 MB: the estimate (the simulator agrees within 1%) gains 13%, as annealing found.
    gained, placement = gain_over_own_order("resnet50", "tpu-mesh4x4")
    assert not (np.diff(placement) >= 0).all()  # not contiguous in the graph's own order
    assert gained > 1.1


def test_dp_keeps_a_shortcut_next_to_its_join_in_the_latest_order() -> None:
    # ResNet-50 on the 36-chip simba: in the importer's, fewest-live-bytes and depth-first orders the
    # best split's busiest chip needs 366.5 us per micro-batch (2,728.5 samples/s); as late as
    # possible, each projection shortcut sits next to the add that joins it and 364.3 us suffice
    # (2,744.8), above what cp proved optimal in 25 s (2,735.0).
    graph = graph_from_module(load_module(EXAMPLES / "resnet50.mlir"))
    target = load_target("simba-6x6")
    orders = _candidate_orders(graph)
    latest = orders[-1]
    assert latest is not None
    position = {int(v): i for i, v in enumerate(latest)}
    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        assert position[u] < position[v]
    earlier = []
    for order in orders[:-1]:
        reordered = graph if order is None else reorder_graph(graph, order)
        split = _dp_split(reordered, target, resolve_rules(reordered, target))
        assert split is not None
        earlier.append(split if order is None else split[np.argsort(order)])
    best_earlier = min(estimate(graph, target, p).period_s for p in earlier)
    placement = place_dp(graph, target)
    assert not check_placement(graph, target, placement)
    assert estimate(graph, target, placement).period_s < best_earlier * (1 - 5e-3)


def test_dp_reaches_cps_optimum_on_bert_with_the_earliest_order() -> None:
    # BERT-base on the 16-chip ring: the importer's order gives 4,302.7 samples/s, as soon as possible
    # 4,321.0, which is what cp proves optimal for the same stage model.
    gained, _ = gain_over_own_order("bert_base", "tpu-ring16")
    assert gained > 1.004


def test_dp_refines_its_split_on_the_order_the_split_induces(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # ResNet-50 on simba-6x6: the best candidate order's split (as late as possible) reaches 2,744.8
    # samples/s; the DP re-run on that split read as an order (by chip, then each order's position)
    # reaches 2,749.8, the pipeline-cut bound's 2,750 within 0.01%. Without the refinement rounds dp
    # stays at the first.
    import chiplex.passes.strategies as strategies

    graph = graph_from_module(load_module(EXAMPLES / "resnet50.mlir"))
    target = load_target("simba-6x6")
    refined = estimate(graph, target, place_dp(graph, target)).period_s
    monkeypatch.setattr(strategies, "DP_REFINE_ROUNDS", 0)
    unrefined = estimate(graph, target, place_dp(graph, target)).period_s
    assert refined < unrefined * (1 - 1e-3)
