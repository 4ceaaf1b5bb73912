"""The pre-training corpus and the held-out split: which (graph, target) problems a policy learns from, and
which it is only ever evaluated on.

The split is written down here and nowhere else:

* **Held-out graphs** (`HELD_OUT_MODELS`): BERT-base, GPT-2 medium, ResNet-50 and ViT-B/16 at their zoo
  sizes. No training graph shares their structure (op kinds, edges and shapes; `structure_key`), which
  `tests/test_corpus.py` checks over the whole corpus.
* **Held-out target shapes** (`HELD_OUT_SHAPES`): a 16-chip ring and a 5x5 mesh. No training target has
  either (topology, layout); the same test checks it.
* **Training graphs**: seeded graphs of every `chiplex.ir.synthetic` family, plus zoo models at sizes the
  held-out ones do not have (`TRAINING_MODELS`).
* **Training targets** (`training_target`): rings, chains, meshes and tori of 2..16 chips (none of the
  held-out shapes), with a TPU-like or a Simba-like chip, whose SRAM is sized from the graph it is paired
  with so that memory is sometimes tight, sometimes loose, and sometimes spills to DRAM. The presets
  `tpu-ring8` and `simba-6x6` are training targets too; held-out *graphs* on them measure transfer across
  graphs, held-out *shapes* measure transfer across modules.

Everything is a pure function of the corpus seed, so two runs of `chiplex train` with the same seed see the
same problems in the same order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, graph_from_module
from chiplex.ir.synthetic import KINDS, SyntheticConfig, random_graph
from chiplex.targets.heuristics import (
    first_fit_packing,
    heuristic_optimize,
    is_legal,
    problem_for,
)
from chiplex.targets.legality import resolve_rules
from chiplex.targets.target import ChipSpec, Target, build_target, load_target

HELD_OUT_MODELS: tuple[str, ...] = ("bert_base", "gpt2_medium", "resnet50", "vit_b16")
"""Zoo models never trained on: the transfer benchmark's graphs."""

HELD_OUT_SHAPES: tuple[tuple[str, tuple[int, int]], ...] = (("ring", (1, 16)), ("mesh", (5, 5)))
"""(topology, (rows, cols)) of modules never trained on: the transfer benchmark's unseen targets."""

TRAINING_MODELS: dict[str, str] = {
    # name -> import spec (`chiplex.models:factory(args)`), sizes unlike any held-out model.
    "bert_4x256": "chiplex.models:bert(4, hidden=256, heads=4)",
    "gpt2_6x384": "chiplex.models:gpt2(6, hidden=384, heads=6)",
    "resnet18": "chiplex.models:resnet18()",
    "mlp": "chiplex.models:mlp()",
    "vit_6x384": "chiplex.models:vit(num_layers=6, hidden=384, heads=6)",
}

TRAINING_SHAPES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("chain", (1, 2)),
    ("ring", (1, 4)),
    ("ring", (1, 6)),
    ("ring", (1, 8)),
    ("ring", (1, 12)),
    ("mesh", (2, 2)),
    ("mesh", (2, 4)),
    ("mesh", (3, 3)),
    ("mesh", (4, 4)),
    ("torus", (3, 3)),
)
"""(topology, (rows, cols)) of the generated training modules."""

TRAINING_PRESETS: tuple[str, ...] = ("tpu-ring8", "simba-6x6")

MEMORY_REGIMES: tuple[str, ...] = ("tight", "loose", "dram")
"""tight: SRAM about 1.3x the graph's average weight share per chip; loose: 3x; dram: a small SRAM
(0.5x) backed by off-chip DRAM that holds the rest."""

_REGIME_FACTOR = {"tight": 1.3, "loose": 3.0, "dram": 0.5}
_MIB = 2**20

# Chip families: the presets' compute and memory speeds, memory sized per problem.
_TPU_LIKE = ChipSpec(
    matrix_ops={"i8": 16.0e12, "bf16": 8.0e12, "f16": 8.0e12, "f32": 2.0e12},
    vector_ops={"i8": 1.0e12, "bf16": 1.0e12, "f16": 1.0e12, "f32": 0.5e12},
    sram_bytes=0,
    sram_bandwidth=400.0e9,
)
_SIMBA_LIKE = ChipSpec(
    matrix_ops={"i8": 3.69e12, "bf16": 0.92e12, "f32": 0.46e12},
    vector_ops={"i8": 0.23e12, "bf16": 0.115e12, "f32": 0.058e12},
    sram_bytes=0,
    sram_bandwidth=460.0e9,
)
_CHIPS = {"tpu": (_TPU_LIKE, 4.0e9, 500e-9), "simba": (_SIMBA_LIKE, 25.0e9, 20e-9)}
"""family -> (chip, link bandwidth bytes/s, link latency s)."""


@dataclass(frozen=True, eq=False)
class Problem:
    """One training or evaluation problem: place `graph` on `target`."""

    name: str
    graph: Graph
    target: Target


def structure_key(graph: Graph) -> str:
    """A digest of a graph's structure (op kinds, result sizes, weights and edges, in topological order),
    independent of names: two graphs with the same key are the same problem for a policy."""
    digest = hashlib.sha256()
    digest.update("\n".join(graph.kinds).encode())
    for array in (graph.output_bytes, graph.weight_bytes, graph.src, graph.dst):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()


def target_shape(target: Target) -> tuple[str, tuple[int, int]]:
    """(topology, (rows, cols)) of a target: what `HELD_OUT_SHAPES` compares."""
    return target.topology, target.shape


def zoo_graph(spec: str) -> Graph:
    """The graph of a zoo model given as an import spec (`chiplex.models:bert(4, hidden=256)`)."""
    from chiplex.ir.torch_import import load_model_spec

    return graph_from_module(load_model_spec(spec))


def training_graphs(count: int, seed: int = 0, *, zoo: bool = True) -> Iterator[tuple[str, Graph]]:
    """`count` seeded synthetic graphs (families in turn), then the training zoo models when `zoo`."""
    config = SyntheticConfig(max_blocks=8)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        graph = graph_from_module(random_graph(seed + i, kind, config))
        yield graph.name, graph
    if zoo:
        for name, spec in TRAINING_MODELS.items():
            yield name, replace(zoo_graph(spec), name=name)


def held_out_graphs() -> Iterator[tuple[str, Graph]]:
    for name in HELD_OUT_MODELS:
        yield name, replace(zoo_graph(f"chiplex.models:{name}()"), name=name)


def sized_target(
    graph: Graph,
    topology: str,
    shape: tuple[int, int],
    regime: str,
    family: str = "tpu",
    *,
    name: str | None = None,
) -> Target:
    """A module of the given shape whose memory is sized for `graph` in the given regime, grown by 25%
    steps (at most 12) until `placers_fit` holds, so the anchor heuristics find a legal placement."""
    if regime not in _REGIME_FACTOR:
        raise ChiplexError(f"unknown memory regime {regime!r}; expected one of {MEMORY_REGIMES}")
    chip, bandwidth, latency = _CHIPS[family]
    rows, cols = shape
    chips = rows * cols
    share = float(graph.weight_bytes.sum()) / chips
    floor = float((graph.weight_bytes + graph.working_set_bytes).max())
    sram = max(_REGIME_FACTOR[regime] * share, 256 * 1024)
    dram = 0
    if regime == "dram":
        dram = int(max(4 * share, floor))
    else:
        sram = max(sram, 1.1 * floor)
    label = name or f"{family}-{topology}{rows}x{cols}-{regime}"
    for _ in range(12):
        spec = replace(
            chip,
            sram_bytes=int(sram),
            dram_bytes=dram,
            dram_bandwidth=12.8e9 if dram else 0.0,
        )
        target = build_target(
            label,
            topology,
            spec,
            num_chips=chips if topology in ("ring", "chain") else None,
            shape=shape if topology in ("mesh", "torus") else None,
            link_bandwidth=bandwidth,
            link_latency=latency,
            description=f"{regime} memory for {graph.name}",
        )
        if placers_fit(graph, target):
            return target
        if dram:
            dram = int(dram * 1.25)
        else:
            sram *= 1.25
    raise ChiplexError(f"could not size a {label} module that fits {graph.name}")


def placers_fit(graph: Graph, target: Target) -> bool:
    """Whether the placers a learned search anchors on find a legal placement of `graph` on `target`
    under its memory rule (receive buffers per edge included: double buffering doubles them).

    First-fit packing must fit in the module's chips *and* pass the checker (it may use more chips than
    the module has: returning a placement is not fitting), and the bottleneck heuristic that greedy's
    and the solver's repair fall back on must find a legal placement too. Sizing by "first fit returns
    something" left BERT-base and ViT-B/16 without any legal dp or greedy placement on the held-out
    16-chip ring (first fit needed 24 and 37 chips)."""
    problem = problem_for(graph, resolve_rules(graph, target))
    packing = first_fit_packing(problem)
    if packing is None or int(packing.max(initial=0)) >= target.num_chips:
        return False
    if not is_legal(problem, packing):
        return False
    return heuristic_optimize(problem, np.ones(problem.n)) is not None


def training_target(graph: Graph, rng: np.random.Generator) -> Target:
    """A random training module for `graph`: one of the training shapes, chip families and regimes."""
    topology, shape = TRAINING_SHAPES[int(rng.integers(len(TRAINING_SHAPES)))]
    regime = MEMORY_REGIMES[int(rng.integers(len(MEMORY_REGIMES)))]
    family = ("tpu", "simba")[int(rng.integers(2))]
    return sized_target(graph, topology, shape, regime, family)


def training_corpus(
    graphs: int = 48, targets_per_graph: int = 2, seed: int = 0, *, zoo: bool = True
) -> list[Problem]:
    """The pre-training problems: every training graph on `targets_per_graph` generated modules, plus on
    each preset it fits. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    presets = [load_target(name) for name in TRAINING_PRESETS]
    problems: list[Problem] = []
    for name, graph in training_graphs(graphs, seed, zoo=zoo):
        for _ in range(targets_per_graph):
            target = training_target(graph, rng)
            problems.append(Problem(f"{name}@{target.name}", graph, target))
        for preset in presets:
            if placers_fit(graph, preset):
                problems.append(Problem(f"{name}@{preset.name}", graph, preset))
    return problems


def held_out_targets(graph: Graph, regime: str = "tight") -> list[Target]:
    """The modules of unseen shape a held-out graph is evaluated on, memory sized for it in `regime`
    (named `held-out-ring16`, `held-out-mesh25` when tight, with `-loose` / `-dram` appended else)."""
    suffix = "" if regime == "tight" else f"-{regime}"
    return [
        sized_target(
            graph, topology, shape, regime, name=f"held-out-{topology}{math.prod(shape)}{suffix}"
        )
        for topology, shape in HELD_OUT_SHAPES
    ]
