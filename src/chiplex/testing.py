"""A testing kit for placement code: hypothesis strategies for NN-shaped graphs, targets and candidate
placements, plus the legality checker (the oracle).

Property-test your own placement function in a few lines::

    from hypothesis import given, settings
    from chiplex.testing import graph_and_target, is_legal

    @settings(max_examples=50, deadline=None)
    @given(graph_and_target(max_ops=30, max_chips=6))
    def test_my_placer_is_legal(case):
        graph, target = case
        assert is_legal(graph, target, my_placer(graph, target))

Every generated (graph, target) pair from `graph_and_target` has a legal placement unless you ask for
`feasible=False`: the chip capacity is at least the smallest capacity at which cutting the graph's block
order into at most K pieces fits, and the optional target rules (hop span, pins, colocation) are taken
from a random contiguous split of the op order (independent of the cuts a first-fit placer makes, so a
placer blind to a rule fails), with the capacity raised until that split is legal.
`graphs_for(my_target)` draws graphs that have a legal placement on a target of your own (a TOML file)
instead. `violation_report` / `assert_legal` give assertion messages that list every violation in full;
a falsifying graph or target prints as the code that rebuilds it (`graph_source`, `target_toml`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.vendor.pretty import RepresentationPrinter, for_type_by_name

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.ir.types import DTYPE_NAMES, element_bytes, parse_dtype
from chiplex.semantics import assert_pipeline_preserves_semantics, nn_programs, tight_target
from chiplex.targets.legality import (
    Placement,
    PlacementRules,
    RuleWarning,
    Violation,
    check_placement,
    format_bytes,
    is_legal,
    placement_array,
    resolve_rules,
)
from chiplex.targets.target import ChipSpec, Target, TargetRules, build_target, target_tables

__all__ = [
    "Violation",
    "assert_pipeline_preserves_semantics",
    "assert_legal",
    "violation_report",
    "check_placement",
    "dtype_bytes",
    "graph_and_target",
    "graph_prefix",
    "graphs_for",
    "graph_source",
    "is_legal",
    "legal_placements",
    "min_capacity",
    "nn_graph",
    "nn_graphs",
    "nn_programs",
    "noisy_placement",
    "placement_array",
    "placements",
    "reference_placement",
    "target_for",
    "target_toml",
    "targets",
    "tight_target",
    "transformer_graph",
    "with_capacity",
]

Pick = Callable[[int, int], int]
"""pick(lo, hi) -> an int in lo..hi (inclusive): a hypothesis draw or a numpy generator."""

ELEMENTWISE = ("nn.add", "nn.gelu", "nn.relu", "nn.mul", "nn.softmax", "nn.layer_norm")
_SHORT = {
    "nn.matmul": "mm",
    "nn.batch_matmul": "bmm",
    "nn.add": "add",
    "nn.gelu": "gelu",
    "nn.relu": "relu",
    "nn.mul": "mul",
    "nn.softmax": "softmax",
    "nn.layer_norm": "ln",
}
OPS_PER_LAYER = 8
"""Ops are named `l<i // 8>.<kind><i>`, so `l2.*` matches the third layer (handy in target rules)."""


# -- graphs ------------------------------------------------------------------------------------------
def nn_graph(
    pick: Pick,
    num_ops: int,
    name: str = "nn",
    *,
    shared_params: bool = False,
    max_hidden: int = 512,
    max_tokens: int = 64,
    activation_dtype: str = "bf16",
    weight_dtypes: Sequence[str] = ("bf16", "i8"),
) -> Graph:
    """A layered DAG shaped like a neural network: a main chain with parallel branches (q/k/v-style
    fan-out), residual skip edges, matmuls with weights and elementwise ops without (layer norms have
    small ones). Sizes are those of a `tokens x width` activation (tokens 8..`max_tokens`, width
    64..`max_hidden`, up to 4x in feed-forward layers, powers of two) in `activation_dtype`, with
    weights in one of `weight_dtypes`.

    With `shared_params`, weights are shared across layers as ALBERT or tied embeddings do: a matmul
    often reuses the weight of an earlier matmul of the same shape, and the layer norms of one width
    share one scale/shift param."""
    hidden = 64 * 2 ** pick(0, _levels(max_hidden, 64, "max_hidden"))
    tokens = 8 * 2 ** pick(0, _levels(max_tokens, 8, "max_tokens"))
    act_elem = dtype_bytes(activation_dtype)
    weight_elem = dtype_bytes(weight_dtypes[pick(0, len(weight_dtypes) - 1)])
    kinds: list[str] = []
    widths: list[int] = []
    edges: list[tuple[int, int]] = []
    flops: list[float] = []
    out_bytes: list[int] = []
    weights: list[int] = []
    params: list[tuple[int, ...]] = []
    param_bytes: list[int] = []
    param_of_shape: dict[tuple[str, int, int], int] = {}
    for i in range(num_ops):
        preds: list[int] = []
        if i > 0:
            # Mostly a chain; sometimes a parallel branch off a recent op.
            main = i - 1 if pick(0, 9) >= 2 else pick(max(0, i - 4), i - 1)
            preds.append(main)
            if i >= 2 and pick(0, 9) < 2:
                skip = pick(max(0, i - 12), i - 2)  # a residual connection
                if skip not in preds:
                    preds.append(skip)
        in_width = widths[preds[0]] if preds else hidden
        if pick(0, 9) < 4:
            kind = "nn.matmul"
            width = hidden * (4 if in_width == hidden and pick(0, 3) == 0 else 1)
            weight = in_width * width * weight_elem
            flop = 2.0 * tokens * in_width * width
        else:
            kind = ELEMENTWISE[pick(0, len(ELEMENTWISE) - 1)]
            if len(preds) == 2 and widths[preds[1]] == in_width:
                kind = "nn.add"
            elif len(preds) == 2:
                preds = preds[:1]
            width = in_width
            weight = 2 * width * act_elem if kind == "nn.layer_norm" else 0
            flop = float(
                tokens * width * (5 if kind in ("nn.softmax", "nn.layer_norm", "nn.gelu") else 1)
            )
        kinds.append(kind)
        widths.append(width)
        edges.extend((p, i) for p in preds)
        flops.append(flop)
        out_bytes.append(tokens * width * act_elem)
        weights.append(weight)
        if weight:
            shape = (kind, in_width, width)
            reuse = shared_params and shape in param_of_shape
            if reuse and (kind == "nn.layer_norm" or pick(0, 1)):
                params.append((param_of_shape[shape],))
            else:
                param_of_shape[shape] = len(param_bytes)
                params.append((len(param_bytes),))
                param_bytes.append(weight)
        else:
            params.append(())
    names = [f"l{i // OPS_PER_LAYER}.{_SHORT[k]}{i}" for i, k in enumerate(kinds)]
    return make_graph(
        kinds=kinds,
        edges=edges,
        flops=flops,
        output_bytes=out_bytes,
        params=params,
        param_bytes=param_bytes,
        dtypes=[activation_dtype] * num_ops,
        name=name,
        op_names=names,
    )


def _levels(largest: int, smallest: int, what: str) -> int:
    """How many doublings of `smallest` stay within `largest`."""
    if largest < smallest:
        raise ValueError(f"{what} must be at least {smallest}, got {largest}")
    return int(np.log2(largest // smallest))


def dtype_bytes(name: str) -> int:
    """Bytes per element of a dtype named as in the IR or a target's ops tables (`i8`, `bf16`, `f32`)."""
    dtype = parse_dtype(name)
    if dtype is None:
        raise ChiplexError(f"dtype {name!r}: expected one of {', '.join(DTYPE_NAMES)}")
    return element_bytes(dtype)


def graph_prefix(graph: Graph, num_ops: int) -> Graph:
    """The first `num_ops` ops of `graph` (a topological prefix: still a graph), with the params they
    read."""
    keep = graph.read_node < num_ops
    used = np.unique(graph.read_param[keep])
    renumber = {int(param): i for i, param in enumerate(used)}
    params: list[list[int]] = [[] for _ in range(num_ops)]
    for node, param in zip(
        graph.read_node[keep].tolist(), graph.read_param[keep].tolist(), strict=True
    ):
        params[node].append(renumber[param])
    return make_graph(
        kinds=list(graph.kinds[:num_ops]),
        edges=[
            (u, v)
            for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True)
            if v < num_ops
        ],
        flops=graph.flops[:num_ops].tolist(),
        output_bytes=graph.output_bytes[:num_ops].tolist(),
        params=[tuple(p) for p in params],
        param_bytes=graph.param_bytes[used].tolist(),
        dtypes=list(graph.dtypes[:num_ops]),
        name=graph.name,
        op_names=list(graph.op_names[:num_ops]),
    )


def transformer_graph(
    num_ops: int, *, seed: int = 0, hidden: int = 768, tokens: int = 128
) -> Graph:
    """A BERT-like encoder stack cut to `num_ops` ops (14 per layer: layer norms, q/k/v, scores,
    softmax, context, output projection, residual adds, a 4x feed-forward), int8 weights, bf16
    activations; `seed` jitters the feed-forward width per layer so graphs differ."""
    rng = np.random.default_rng(seed)
    kinds: list[str] = []
    names: list[str] = []
    edges: list[tuple[int, int]] = []
    flops: list[float] = []
    out_bytes: list[int] = []
    weights: list[int] = []
    act = tokens * hidden * 2

    def add(kind: str, name: str, preds: list[int], flop: float, out: int, weight: int) -> int:
        index = len(kinds)
        kinds.append(kind)
        names.append(name)
        edges.extend((p, index) for p in preds if p >= 0)
        flops.append(flop)
        out_bytes.append(out)
        weights.append(weight)
        return index

    x = -1
    layer = 0
    while len(kinds) < num_ops:
        ffn = hidden * int(rng.choice([2, 3, 4]))
        p = f"encoder.{layer}"
        mm = 2.0 * tokens * hidden * hidden
        ln1 = add("nn.layer_norm", f"{p}.ln1", [x], 5.0 * tokens * hidden, act, 4 * hidden)
        q = add("nn.matmul", f"{p}.attn.q", [ln1], mm, act, hidden * hidden)
        k = add("nn.matmul", f"{p}.attn.k", [ln1], mm, act, hidden * hidden)
        v = add("nn.matmul", f"{p}.attn.v", [ln1], mm, act, hidden * hidden)
        scores_bytes = 12 * tokens * tokens * 2
        s = add(
            "nn.batch_matmul",
            f"{p}.attn.scores",
            [q, k],
            2.0 * tokens * tokens * hidden,
            scores_bytes,
            0,
        )
        sm = add(
            "nn.softmax", f"{p}.attn.softmax", [s], 5.0 * 12 * tokens * tokens, scores_bytes, 0
        )
        ctx = add(
            "nn.batch_matmul", f"{p}.attn.context", [sm, v], 2.0 * tokens * tokens * hidden, act, 0
        )
        o = add("nn.matmul", f"{p}.attn.out", [ctx], mm, act, hidden * hidden)
        r1 = add("nn.add", f"{p}.residual1", [o, x], float(tokens * hidden), act, 0)
        ln2 = add("nn.layer_norm", f"{p}.ln2", [r1], 5.0 * tokens * hidden, act, 4 * hidden)
        f1 = add(
            "nn.matmul",
            f"{p}.ffn.w1",
            [ln2],
            2.0 * tokens * hidden * ffn,
            tokens * ffn * 2,
            hidden * ffn,
        )
        g = add("nn.gelu", f"{p}.ffn.gelu", [f1], 5.0 * tokens * ffn, tokens * ffn * 2, 0)
        f2 = add("nn.matmul", f"{p}.ffn.w2", [g], 2.0 * tokens * hidden * ffn, act, hidden * ffn)
        x = add("nn.add", f"{p}.residual2", [f2, r1], float(tokens * hidden), act, 0)
        layer += 1
    n = num_ops
    return make_graph(
        kinds=kinds[:n],
        edges=[(u, v) for u, v in edges if v < n],
        flops=flops[:n],
        output_bytes=out_bytes[:n],
        weight_bytes=weights[:n],
        name=f"transformer{n}",
        op_names=names[:n],
    )


def graph_source(graph: Graph) -> str:
    """`graph` as the `make_graph(...)` call that rebuilds it, one commented line per op (its inputs,
    weights, output and flops) above the arrays: what hypothesis prints for a falsifying graph (not the
    dataclass's numpy arrays). Host-input bytes and IR ops are not rebuilt (graphs from IR)."""
    n = graph.num_nodes
    inputs: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        inputs[v].append(u)
    width = max((len(name) for name in graph.op_names), default=0)
    edges = f"{graph.num_edges} edge{'' if graph.num_edges == 1 else 's'}"
    lines = [f"make_graph(  # {graph.name}: {n} op{'' if n == 1 else 's'}, {edges}"]
    for v in range(n):
        weights = int(graph.weight_bytes[v])
        lines.append(
            f"    # {v:>3} {graph.op_names[v]:<{width}} {graph.kinds[v]:<16} <- "
            f"{','.join(map(str, inputs[v])) or '-':<10} "
            f"{'w ' + format_bytes(weights) if weights else 'no weights':<14} "
            f"out {format_bytes(int(graph.output_bytes[v])):<11} {graph.flops[v]:.3g} flops"
        )
    readers: list[list[int]] = [[] for _ in range(n)]
    for node, param in zip(graph.read_node.tolist(), graph.read_param.tolist(), strict=True):
        readers[node].append(param)
    lines += [
        f"    kinds={list(graph.kinds)!r},",
        f"    edges={list(zip(graph.src.tolist(), graph.dst.tolist(), strict=True))!r},",
        f"    flops={graph.flops.tolist()!r},",
        f"    output_bytes={graph.output_bytes.tolist()!r},",
        f"    params={[tuple(params) for params in readers]!r},",
        f"    param_bytes={graph.param_bytes.tolist()!r},",
        f"    dtypes={list(graph.dtypes)!r},",
        f"    name={graph.name!r},",
        f"    op_names={list(graph.op_names)!r},",
        ")",
    ]
    return "\n".join(lines)


def target_toml(target: Target) -> str:
    """`target` as the TOML file that `load_target` / `target_from_toml` read back to an equal target:
    save a generated target that broke a property and run `chiplex check` or `chiplex compile` on it."""

    def value(x: object) -> str:
        if isinstance(x, str):
            return json.dumps(x)  # a TOML basic string is a JSON string
        if isinstance(x, dict):
            return "{ " + ", ".join(f"{key} = {value(v)}" for key, v in x.items()) + " }"
        if isinstance(x, (list, tuple)):
            return "[" + ", ".join(value(v) for v in x) + "]"
        if isinstance(x, float) and x and not 1e-3 <= abs(x) < 1e6:
            mantissa, exponent = f"{x:.12e}".split("e")  # 4e+11, not 400000000000.0
            short = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
            return short if float(short) == x else repr(x)
        return repr(x)

    tables = target_tables(target)
    lines = [f"{key} = {value(v)}" for key, v in tables.items() if not isinstance(v, dict)]
    for section, body in tables.items():
        if isinstance(body, dict):
            lines += ["", f"[{section}]", *(f"{key} = {value(v)}" for key, v in body.items())]
    return "\n".join(lines) + "\n"


def _show_lines(text: str, printer: RepresentationPrinter) -> None:
    """Multi-line text, each line at the printer's indentation (hypothesis nests it in a call)."""
    for i, line in enumerate(text.splitlines()):
        if i:
            printer.break_()
        printer.text(line)


def _show_graph(graph: Graph, printer: RepresentationPrinter, cycle: bool) -> None:
    _show_lines(graph_source(graph), printer)


def _show_target(target: Target, printer: RepresentationPrinter, cycle: bool) -> None:
    _show_lines(f'target_from_toml("""\n{target_toml(target)}""")', printer)


# The hook hypothesis offers for types it does not own (IPython's pretty-printer protocol): a
# falsifying graph or target is shown as the code that rebuilds it, not as dataclass fields.
for_type_by_name("chiplex.ir.graph", "Graph", _show_graph)
for_type_by_name("chiplex.targets.target", "Target", _show_target)


@st.composite
def nn_graphs(
    draw: st.DrawFn,
    min_ops: int = 1,
    max_ops: int = 40,
    shared_params: bool | None = None,
    *,
    max_hidden: int = 512,
    max_tokens: int = 64,
    activation_dtypes: Sequence[str] = ("bf16",),
    weight_dtypes: Sequence[str] = ("bf16", "i8"),
) -> Graph:
    """Hypothesis strategy: NN-shaped DAGs (see `nn_graph`) with min_ops..max_ops ops; params shared
    across layers in some of them (`shared_params=None`), all (True) or none (False); activations in
    one of `activation_dtypes`, weights in one of `weight_dtypes`."""
    num_ops = draw(st.integers(min_ops, max_ops))
    share = draw(st.booleans()) if shared_params is None else shared_params
    activation = (
        draw(st.sampled_from(activation_dtypes))
        if len(activation_dtypes) > 1
        else activation_dtypes[0]
    )
    return nn_graph(
        lambda lo, hi: draw(st.integers(lo, hi)),
        num_ops,
        shared_params=share,
        max_hidden=max_hidden,
        max_tokens=max_tokens,
        activation_dtype=activation,
        weight_dtypes=weight_dtypes,
    )


def _largest_sizes(
    target: Target, activation_dtypes: Sequence[str], weight_dtypes: Sequence[str]
) -> tuple[int, int]:
    """The largest (hidden, tokens) of `nn_graph` at which any single op, alone on a chip with its
    receive buffers, fits the target's chip (a conservative bound: a 4h x h weight, two 4h-wide inputs
    and a 4h-wide output)."""
    act = max(dtype_bytes(d) for d in activation_dtypes)
    weight = max([dtype_bytes(d) for d in weight_dtypes] + [act])
    buffers = target.chip.buffers_per_edge
    capacity = target.chip.capacity_bytes

    def one_op(hidden: int, tokens: int) -> int:
        return 4 * hidden * hidden * weight + tokens * hidden * act * (12 + 8 * buffers)

    fitting = [
        (hidden * tokens, hidden, tokens)
        for hidden in (64, 128, 256, 512)
        for tokens in (8, 16, 32, 64)
        if one_op(hidden, tokens) <= capacity
    ]
    if not fitting:
        raise ChiplexError(
            f"target {target.name}: a chip holds {format_bytes(capacity)}, less than the smallest op "
            f"graphs_for generates needs ({format_bytes(one_op(64, 8))}: a 256x64 weight and 8-token "
            "activations with their receive buffers)"
        )
    _, hidden, tokens = max(fitting)
    return hidden, tokens


@st.composite
def graphs_for(
    draw: st.DrawFn,
    target: Target,
    min_ops: int = 1,
    max_ops: int = 30,
    shared_params: bool | None = None,
    *,
    activation_dtypes: Sequence[str] = ("bf16",),
    weight_dtypes: Sequence[str] = ("bf16", "i8"),
) -> Graph:
    """Hypothesis strategy: NN-shaped graphs (`nn_graphs`) that have a legal placement on your
    `target` (a TOML file through `load_target`, a preset, or any `Target`), rules included. Sizes are
    capped so that every op fits one chip; a graph whose ops do not all fit the target is cut to its
    longest prefix (at least `min_ops` ops) for which the repair heuristic finds a legal placement, so
    no example is filtered out and every one shrinks. An example is rejected only when even `min_ops`
    ops have no legal placement that the heuristic finds (pins that need more ops, say)."""
    max_hidden, max_tokens = _largest_sizes(target, activation_dtypes, weight_dtypes)
    graph = draw(
        nn_graphs(
            min_ops,
            max_ops,
            shared_params,
            max_hidden=max_hidden,
            max_tokens=max_tokens,
            activation_dtypes=activation_dtypes,
            weight_dtypes=weight_dtypes,
        )
    )

    def placeable(num_ops: int) -> bool:
        with warnings.catch_warnings():
            # The target's rules name its own models' ops; a glob matching no generated op is fine.
            warnings.simplefilter("ignore", RuleWarning)
            prefix = graph_prefix(graph, num_ops)
            found = _legal_reference(prefix, target)
            return found is not None and is_legal(prefix, target, found)

    if placeable(graph.num_nodes):
        return graph
    if not placeable(min_ops):
        reject()
    fits, too_many = min_ops, graph.num_nodes  # placeable(fits), not placeable(too_many)
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        fits, too_many = (middle, too_many) if placeable(middle) else (fits, middle)
    return graph_prefix(graph, fits)


# -- capacities and reference placements ---------------------------------------------------------------
def _plain_rules(graph: Graph, num_chips: int, capacity: int, buffers: int) -> PlacementRules:
    return PlacementRules(
        num_chips=num_chips,
        capacity_bytes=int(capacity),
        max_hop_span=None,
        pinned=np.full(graph.num_nodes, -1, dtype=np.int64),
        colocated=(),
        buffers_per_edge=buffers,
    )


def _greedy_cut(graph: Graph, num_chips: int, capacity: int, buffers: int = 2) -> np.ndarray | None:
    """Cut the block order greedily (each chip takes the longest prefix that fits); None if > K chips."""
    from chiplex.targets import heuristics

    # Only segment_ends reads the capacity; the rest of the problem is built once per graph (problem_for
    # caches it) instead of once per capacity that min_capacity's bisection tries.
    base = heuristics.problem_for(graph, _plain_rules(graph, num_chips, 0, buffers))
    problem = dataclasses.replace(base, capacity=int(capacity))
    seq = heuristics.sequence_of(problem, np.arange(graph.num_nodes))
    end = heuristics.segment_ends(problem, seq)
    placement = np.zeros(graph.num_nodes, dtype=np.int64)
    j, chip = 0, 0
    while j < graph.num_nodes:
        if chip >= num_chips or end[j] == j:
            return None
        placement[j : end[j]] = chip
        j, chip = int(end[j]), chip + 1
    return placement


def min_capacity(graph: Graph, num_chips: int, buffers_per_edge: int = 2) -> int:
    """The smallest chip capacity (bytes) at which the block order cuts into <= num_chips legal chips
    with `buffers_per_edge` receive buffers; an upper bound on the true minimum over all placements."""
    lo = 0
    hi = (
        int(
            graph.total_weight_bytes
            + buffers_per_edge * graph.output_bytes.sum()
            + graph.working_set_bytes.max(initial=0)
        )
        + 1
    )
    while lo < hi:
        mid = (lo + hi) // 2
        if _greedy_cut(graph, num_chips, mid, buffers_per_edge) is None:
            lo = mid + 1
        else:
            hi = mid
    return max(lo, 1)


def reference_placement(
    graph: Graph, num_chips: int, capacity: int, buffers_per_edge: int = 2
) -> np.ndarray | None:
    """A legal placement under the structural and memory rules (greedy cut of the block order), or None
    when the greedy cut finds none at any capacity up to `capacity`."""
    placement = _greedy_cut(graph, num_chips, capacity, buffers_per_edge)
    if placement is None:
        # First fit is not monotone in the capacity, so a capacity above `min_capacity` can fail where
        # the minimum succeeded; the minimum's cut fits the larger chips too.
        need = min_capacity(graph, num_chips, buffers_per_edge)
        if need <= capacity:
            placement = _greedy_cut(graph, num_chips, need, buffers_per_edge)
    return placement


# -- targets -------------------------------------------------------------------------------------------
def _chip(capacity: int, dram_share: float = 0.0, buffers: int = 2) -> ChipSpec:
    dram = int(capacity * dram_share)
    return ChipSpec(
        buffers_per_edge=buffers,
        matrix_ops={"i8": 16e12, "bf16": 8e12, "f32": 2e12},
        vector_ops={"i8": 1e12, "bf16": 1e12, "f32": 0.5e12},
        sram_bytes=int(capacity) - dram,
        sram_bandwidth=400e9,
        dram_bytes=dram,
        dram_bandwidth=12.8e9 if dram else 0.0,
    )


def _build(topology: str, num_chips: int, chip: ChipSpec, rules: TargetRules, name: str) -> Target:
    if topology == "mesh":
        rows = next(r for r in range(int(num_chips**0.5), 0, -1) if num_chips % r == 0)
        return build_target(
            name,
            "mesh",
            chip,
            shape=(rows, num_chips // rows),
            link_bandwidth=25e9,
            link_latency=20e-9,
            rules=rules,
        )
    return build_target(
        name,
        topology,
        chip,
        num_chips=num_chips,
        link_bandwidth=4e9,
        link_latency=500e-9,
        rules=rules,
    )


def target_for(
    graph: Graph,
    num_chips: int,
    *,
    slack: float = 1.2,
    topology: str = "ring",
    rules: TargetRules | None = None,
    dram_share: float = 0.0,
    name: str = "synthetic",
    buffers_per_edge: int = 2,
) -> Target:
    """A target whose chip capacity is `slack` x `min_capacity(graph, num_chips, buffers_per_edge)`."""
    capacity = int(np.ceil(slack * min_capacity(graph, num_chips, buffers_per_edge)))
    chip = _chip(capacity, dram_share, buffers_per_edge)
    return _build(topology, num_chips, chip, rules or TargetRules(), name)


@st.composite
def targets(
    draw: st.DrawFn, min_chips: int = 1, max_chips: int = 8, with_rules: bool = True
) -> Target:
    """Hypothesis strategy: ring, chain or mesh targets with random capacities (sometimes with DRAM),
    1-3 receive buffers per edge and, when `with_rules`, sometimes a hop-span limit, pins and
    colocation on `l<i>.*` op names."""
    num_chips = draw(st.integers(min_chips, max_chips))
    topology = draw(st.sampled_from(["ring", "chain", "mesh"]))
    capacity = draw(st.sampled_from([2**18, 2**20, 4 * 2**20, 16 * 2**20]))
    dram_share = draw(st.sampled_from([0.0, 0.0, 0.5]))
    buffers = draw(st.integers(1, 3))
    rules = TargetRules()
    if with_rules and draw(st.booleans()):
        span = draw(st.one_of(st.none(), st.integers(1, 3)))
        pins = tuple(draw(st.lists(st.tuples(st.just("l0.*"), st.just(0)), max_size=1)))
        coloc = tuple(draw(st.lists(st.just(("l1.mm*",)), max_size=1)))
        rules = TargetRules(max_hop_span=span, pinned=pins, colocated=coloc)
    return _build(topology, num_chips, _chip(capacity, dram_share, buffers), rules, "random")


@st.composite
def graph_and_target(
    draw: st.DrawFn,
    min_ops: int = 1,
    max_ops: int = 30,
    min_chips: int = 1,
    max_chips: int = 6,
    with_rules: bool = True,
    feasible: bool = True,
    buffers_per_edge: int | None = None,
    *,
    topologies: Sequence[str] = ("ring", "chain", "mesh"),
    activation_dtypes: Sequence[str] = ("bf16",),
    weight_dtypes: Sequence[str] = ("bf16", "i8"),
) -> tuple[Graph, Target]:
    """Hypothesis strategy: an NN-shaped graph and a target sized for it. With `feasible` (the default)
    a legal placement always exists; with `feasible=False` the capacity is sometimes too small.
    Graphs share params across layers in about half the draws and use the dtypes given (see
    `nn_graphs`); targets are one of `topologies` (ring, chain, mesh) with 1-3 buffers per edge
    (`buffers_per_edge` fixes it)."""
    unknown = sorted(set(topologies) - {"ring", "chain", "mesh"})
    if unknown or not topologies:
        raise ChiplexError(
            f"graph_and_target: topologies must be ring, chain or mesh, got {unknown}"
        )
    graph = draw(
        nn_graphs(
            min_ops=min_ops,
            max_ops=max_ops,
            activation_dtypes=activation_dtypes,
            weight_dtypes=weight_dtypes,
        )
    )
    num_chips = draw(st.integers(min_chips, max_chips))
    buffers = draw(st.integers(1, 3)) if buffers_per_edge is None else buffers_per_edge
    need = min_capacity(graph, num_chips, buffers)
    slacks = [1.0, 1.05, 1.2, 1.5, 2.0, 4.0] if feasible else [0.5, 0.9, 1.0, 1.2, 2.0]
    capacity = int(np.ceil(draw(st.sampled_from(slacks)) * need))
    dram_share = draw(st.sampled_from([0.0, 0.0, 0.25]))
    reference = reference_placement(graph, num_chips, capacity, buffers)
    topology = draw(st.sampled_from(list(topologies)))
    if not (with_rules and reference is not None and draw(st.integers(0, 2)) == 0):
        return graph, _build(
            topology, num_chips, _chip(capacity, dram_share, buffers), TargetRules(), "generated"
        )
    # Rules come from a witness drawn independently of the block cuts a first-fit placer makes (a
    # random contiguous split of the op order), so a placer that ignores pins, colocation or the
    # hop span is caught; the capacity grows until the witness fits, so it stays a legal placement.
    witness = _random_split(draw, graph, num_chips)
    rules = _rules_from(draw, graph, witness)
    target = _build(topology, num_chips, _chip(capacity, dram_share, buffers), rules, "generated")
    for _ in range(64):
        if is_legal(graph, target, witness):
            break
        capacity = int(capacity * 1.5) + 1
        target = _build(
            topology, num_chips, _chip(capacity, dram_share, buffers), rules, "generated"
        )
    else:  # pragma: no cover - the witness satisfies every rule but memory, which growth fixes
        raise AssertionError("the witness placement never became legal")
    return graph, target


def _random_split(draw: st.DrawFn, graph: Graph, num_chips: int) -> np.ndarray:
    """A random split of the (topological) op order into 1..K contiguous pieces, piece i on chip i:
    acyclic and without skipped chips by construction, cut wherever hypothesis likes."""
    n = graph.num_nodes
    pieces = draw(st.integers(1, max(1, min(num_chips, n))))
    cuts = (
        sorted(
            draw(
                st.lists(
                    st.integers(1, n - 1), min_size=pieces - 1, max_size=pieces - 1, unique=True
                )
            )
        )
        if n > 1
        else []
    )
    placement = np.zeros(n, dtype=np.int64)
    for cut in cuts:
        placement[cut:] += 1
    return placement


def _rules_from(draw: st.DrawFn, graph: Graph, reference: np.ndarray) -> TargetRules:
    """Target rules that `reference` satisfies: so the pair keeps a legal placement (pins, a
    colocated pair on one chip, and a hop span at least as wide as its widest edge)."""
    n = graph.num_nodes
    span = None
    if graph.num_edges and draw(st.booleans()):
        widest = int((reference[graph.dst] - reference[graph.src]).max())
        span = max(1, widest + draw(st.integers(0, 1)))  # a TOML file's max_hop_span is >= 1
    pinned: list[tuple[str, int]] = []
    for op in draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True)):
        pinned.append((graph.op_names[op], int(reference[op])))
    colocated: list[tuple[str, ...]] = []
    if draw(st.booleans()):
        op = draw(st.integers(0, n - 1))
        mates = np.flatnonzero(reference == reference[op])
        other = int(mates[draw(st.integers(0, len(mates) - 1))])
        if other != op:
            colocated.append((graph.op_names[op], graph.op_names[other]))
    return TargetRules(max_hop_span=span, pinned=tuple(pinned), colocated=tuple(colocated))


# -- placements ----------------------------------------------------------------------------------------
def noisy_placement(
    placement: np.ndarray, num_chips: int, *, share: float = 0.2, max_shift: int = 2, seed: int = 0
) -> np.ndarray:
    """Move `share` of the ops by 1..max_shift chips up or down (clipped to the target's chips): the
    kind of near-miss a learned policy proposes."""
    rng = np.random.default_rng(seed)
    out = np.asarray(placement, dtype=np.int64).copy()
    moved = rng.random(len(out)) < share
    shift = rng.integers(1, max_shift + 1, size=len(out)) * rng.choice([-1, 1], size=len(out))
    out[moved] = np.clip(out[moved] + shift[moved], 0, num_chips - 1)
    return out


def _legal_reference(graph: Graph, target: Target) -> np.ndarray | None:
    from chiplex.targets import heuristics

    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    return heuristics.heuristic_optimize(problem, np.ones(graph.num_nodes))


@st.composite
def placements(draw: st.DrawFn, graph: Graph, target: Target) -> np.ndarray:
    """Hypothesis strategy: candidate placements for `graph` on `target`: uniformly random, sorted
    (monotone but often memory-infeasible), a legal placement with a few ops moved, or legal as is;
    occasionally with a chip outside 0..K-1. Some are legal, most are not."""
    n, k = graph.num_nodes, target.num_chips
    style = draw(st.sampled_from(["uniform", "sorted", "perturbed", "perturbed", "legal"]))
    chips = st.integers(0, k - 1)
    reference = _legal_reference(graph, target) if style in ("perturbed", "legal") else None
    if reference is None:
        values = np.array(draw(st.lists(chips, min_size=n, max_size=n)), dtype=np.int64)
        if style == "sorted":
            values = np.sort(values)
    else:
        values = reference.copy()
        if style == "perturbed" and n:
            for op in draw(
                st.lists(st.integers(0, n - 1), min_size=1, max_size=max(1, n // 4), unique=True)
            ):
                values[op] = draw(chips)
    if n and draw(st.integers(0, 9)) == 0:
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, k]))
    return values


@st.composite
def legal_placements(draw: st.DrawFn, graph: Graph, target: Target) -> np.ndarray:
    """Hypothesis strategy: legal placements of `graph` on `target`, as varied as `placements`: a
    candidate from `placements` (chips clipped into 0..K-1) kept if legal, else repaired by the repair
    heuristic (numpy, no solver), else the heuristic placement. The example is rejected when neither
    heuristic finds a legal placement (rare for `graph_and_target` and `graphs_for`, which have one)."""
    from chiplex.targets import heuristics

    candidate = np.clip(draw(placements(graph, target)), 0, max(target.num_chips - 1, 0))
    rules = resolve_rules(graph, target)
    if is_legal(graph, target, candidate, rules):
        return candidate
    found = heuristics.heuristic_repair(heuristics.problem_for(graph, rules), candidate)
    if found is None:
        found = _legal_reference(graph, target)
    if found is None:
        reject()
    return found


def with_capacity(target: Target, capacity: int) -> Target:
    """The same target with another chip capacity (SRAM only; the same buffers per edge)."""
    return dataclasses.replace(target, chip=_chip(capacity, buffers=target.chip.buffers_per_edge))


# -- assertion messages ------------------------------------------------------------------------------
def violation_report(graph: Graph, target: Target, placement: Placement) -> str:
    """Every violated rule of `placement` (an array, or a dict of op name -> chip), one per line and
    in full, for an assertion message.

    pytest and hypothesis shorten the repr of a list; a string with one violation per line is shown
    as is::

        assert is_legal(graph, target, placement), violation_report(graph, target, placement)
    """
    placement = placement_array(graph, placement)
    violations = check_placement(graph, target, placement)
    if not violations:
        return f"legal: {graph.num_nodes} ops on {target.name}"
    rules = target.rules
    described = [
        *([f"max_hop_span {rules.max_hop_span}"] if rules.max_hop_span is not None else []),
        *(f"pinned {pattern!r} to chip {chip}" for pattern, chip in rules.pinned),
        *(f"colocated {list(group)}" for group in rules.colocated),
    ]
    count = f"{len(violations)} violation{'' if len(violations) == 1 else 's'}"
    head = (
        f"{count} of {graph.name} ({graph.num_nodes} ops) on {target.name} "
        f"({target.num_chips} chips, {target.chip.capacity_bytes:,} bytes each; "
        f"{'rules: ' + ', '.join(described) if described else 'no target rules'}):"
    )
    body = "\n".join(f"  {violation}" for violation in violations)
    return f"{head}\n{body}\n  placement: {np.asarray(placement).tolist()}"


def assert_legal(graph: Graph, target: Target, placement: Placement) -> None:
    """Raise AssertionError with `violation_report` unless `placement` is legal."""
    if not is_legal(graph, target, placement):
        raise AssertionError(violation_report(graph, target, placement))
