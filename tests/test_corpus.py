"""The pre-training corpus: deterministic, solvable, and disjoint from the held-out graphs and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from chiplex.learned.corpus import (
    HELD_OUT_MODELS,
    HELD_OUT_SHAPES,
    MEMORY_REGIMES,
    TRAINING_MODELS,
    TRAINING_SHAPES,
    held_out_graphs,
    held_out_targets,
    placers_fit,
    sized_target,
    structure_key,
    target_shape,
    training_corpus,
    training_graphs,
)
from chiplex.targets.heuristics import first_fit_packing, problem_for
from chiplex.targets.legality import resolve_rules


@pytest.fixture(scope="module")
def held_out() -> dict[str, object]:
    return dict(held_out_graphs())


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    return training_corpus(graphs=8, targets_per_graph=2, seed=3)


def test_split_lists_are_disjoint() -> None:
    assert not set(HELD_OUT_MODELS) & set(TRAINING_MODELS)
    assert not {name for name in TRAINING_MODELS.values()} & {
        f"chiplex.models:{name}()" for name in HELD_OUT_MODELS
    }
    assert not set(HELD_OUT_SHAPES) & set(TRAINING_SHAPES)


def test_no_held_out_structure_reaches_training(held_out, corpus) -> None:  # type: ignore[no-untyped-def]
    held_keys = {structure_key(g): name for name, g in held_out.items()}
    assert len(held_keys) == len(HELD_OUT_MODELS)
    for problem in corpus:
        assert structure_key(problem.graph) not in held_keys, problem.name
        assert target_shape(problem.target) not in HELD_OUT_SHAPES, problem.name


def test_structure_key_sees_structure_not_names(held_out) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    bert = held_out["bert_base"]
    renamed = dataclasses.replace(
        bert, name="other", op_names=tuple(f"x{i}" for i in range(bert.num_nodes))
    )
    assert structure_key(renamed) == structure_key(bert)
    heavier = dataclasses.replace(bert, weight_bytes=bert.weight_bytes + 1)
    assert structure_key(heavier) != structure_key(bert)


def test_corpus_is_deterministic(corpus) -> None:  # type: ignore[no-untyped-def]
    again = training_corpus(graphs=8, targets_per_graph=2, seed=3)
    assert [p.name for p in again] == [p.name for p in corpus]
    for a, b in zip(again, corpus, strict=True):
        assert structure_key(a.graph) == structure_key(b.graph)
        assert a.target.chip == b.target.chip and a.target.num_chips == b.target.num_chips
    other = training_corpus(graphs=8, targets_per_graph=2, seed=4, zoo=False)
    assert [p.name for p in other] != [p.name for p in corpus]


def test_every_problem_is_solvable_and_regimes_vary(corpus) -> None:  # type: ignore[no-untyped-def]
    seen_regimes = set()
    for problem in corpus:
        rules = resolve_rules(problem.graph, problem.target)
        packing = first_fit_packing(problem_for(problem.graph, rules))
        assert packing is not None and packing.max() < problem.target.num_chips, problem.name
        seen_regimes.update(r for r in MEMORY_REGIMES if problem.target.name.endswith(r))
    assert len(seen_regimes) >= 2
    assert {p.target.num_chips for p in corpus} >= {8, 36}


def test_held_out_targets_have_unseen_shapes(held_out) -> None:  # type: ignore[no-untyped-def]
    targets = held_out_targets(held_out["resnet50"])
    assert [target_shape(t) for t in targets] == list(HELD_OUT_SHAPES)
    assert [t.num_chips for t in targets] == [16, 25]
    assert [t.name for t in targets] == ["held-out-ring16", "held-out-mesh25"]
    # Other regimes keep the shapes and say so in the name; BERT-base's SRAM grows with them
    # (ResNet-50's is set by its largest op in both, 1.1x its weights and working set).
    tight = held_out_targets(held_out["bert_base"])
    loose = held_out_targets(held_out["bert_base"], "loose")
    assert [t.name for t in loose] == ["held-out-ring16-loose", "held-out-mesh25-loose"]
    assert [target_shape(t) for t in loose] == list(HELD_OUT_SHAPES)
    assert all(a.chip.sram_bytes > t.chip.sram_bytes for a, t in zip(loose, tight, strict=True))


@pytest.mark.parametrize("model", ["bert_base", "vit_b16"])
def test_held_out_ring_is_sized_for_the_anchor_placers(held_out, model: str) -> None:  # type: ignore[no-untyped-def]
    """dp and greedy (the learned search's anchors) place every held-out model legally on the held-out
    shapes. Sizing by 'first fit returns a placement' left BERT-base and ViT without one on the 16-chip
    ring: first fit's answer used 24 and 37 chips."""
    from chiplex.passes.strategies import place_dp, place_greedy
    from chiplex.targets.legality import check_placement

    graph = held_out[model]
    for target in held_out_targets(graph):
        rules = resolve_rules(graph, target)
        assert rules.buffers_per_edge == 2  # double buffering: the rule the old sizing ignored
        assert placers_fit(graph, target)
        for place in (place_dp, place_greedy):
            placement = place(graph, target, 0)
            assert placement.max() < target.num_chips
            assert not check_placement(graph, target, placement, rules), (
                place.__name__,
                target.name,
            )


def test_placers_fit_rejects_a_packing_that_needs_more_chips(held_out) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    graph = held_out["bert_base"]
    ring = held_out_targets(graph)[0]
    small = dataclasses.replace(
        ring, chip=dataclasses.replace(ring.chip, sram_bytes=int(ring.chip.sram_bytes * 0.7))
    )
    packing = first_fit_packing(problem_for(graph, resolve_rules(graph, small)))
    assert (
        packing is not None and packing.max() >= small.num_chips
    )  # first fit "succeeds" off the module
    assert not placers_fit(graph, small)


def test_sized_target_regimes() -> None:
    _, graph = next(training_graphs(1, seed=0, zoo=False))
    tight = sized_target(graph, "ring", (1, 4), "tight")
    loose = sized_target(graph, "ring", (1, 4), "loose")
    dram = sized_target(graph, "ring", (1, 4), "dram")
    assert tight.chip.sram_bytes < loose.chip.sram_bytes
    assert dram.chip.dram_bytes > 0 and tight.chip.dram_bytes == 0
    assert np.isclose(tight.chip.sram_bandwidth, loose.chip.sram_bandwidth)
