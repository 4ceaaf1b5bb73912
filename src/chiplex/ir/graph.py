"""The graph view: a `func.func` of `nn` ops as numpy arrays, for placement, learning and simulation.

Nodes are the compute ops of the function body, in block order (which is a topological order).
`nn.param` and `nn.constant` are stationary data, not nodes: each is a *param* with an identity
(`param_bytes[p]`, and the (node, param) pairs `read_node`/`read_param` saying who reads it). A param is
stored once on every chip that has a reader of it: a weight used by ops on two chips is stored on both,
a weight shared by two ops on one chip is stored there once (`chiplex.targets.legality.chip_weights`).
`weight_bytes[v]` is what node v reads (the bytes of its params, for the roofline), so summing it over a
chip's nodes counts a shared param once per reader. Function arguments arrive from the host; their
bytes count in the consumer's `input_bytes`. An edge u -> v means v reads u's result, and moving it
between chips costs `output_bytes[u]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, BlockArgument, Operation, OpResult

from chiplex.errors import ChiplexError
from chiplex.ir.locations import locate
from chiplex.ir.types import MAX_TENSOR_BYTES, tensor_bytes

STATIONARY_OPS = ("nn.param", "nn.constant")
MATRIX_OPS = ("nn.matmul", "nn.batch_matmul", "nn.conv2d")
"""Ops that run on a chip's matrix unit; every other op runs on the vector unit."""


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    """The function's symbol name."""
    op_names: tuple[str, ...]
    """A readable name per node: the result's SSA name, or `<kind>_<index>`."""
    kinds: tuple[str, ...]
    """The op name per node (`nn.matmul`)."""
    dtypes: tuple[str, ...]
    """The result element type per node (`bf16`); selects the chip's peak rate."""
    is_matrix: np.ndarray
    """bool[n]: runs on the matrix unit."""
    flops: np.ndarray
    """float64[n]"""
    output_bytes: np.ndarray
    """int64[n]: bytes of the node's result."""
    input_bytes: np.ndarray
    """int64[n]: bytes read from function arguments (host inputs)."""
    weight_bytes: np.ndarray
    """int64[n]: bytes of params and constants the node reads."""
    activation_in_bytes: np.ndarray
    """int64[n]: bytes of activations (other nodes' results and host inputs) the node reads."""
    src: np.ndarray
    """int32[e]: edge sources (each producer -> consumer pair once)."""
    dst: np.ndarray
    """int32[e]: edge destinations; src < dst because nodes are in topological order."""
    param_names: tuple[tuple[str, ...], ...]
    """Names of the params each node reads (for messages)."""
    samples_per_microbatch: int = 1
    ops: tuple[Operation, ...] = field(default=(), repr=False)
    """The IR op of each node, when built from IR."""
    param_bytes: np.ndarray | None = field(default=None, repr=False)
    """int64[P]: bytes of each param (an `nn.param` or `nn.constant`). None when built without param
    identities: then every node with weights has one param of its own (nothing is shared)."""
    read_node: np.ndarray | None = field(default=None, repr=False)
    """int64[r]: the node of each (node, param) read pair, each pair once."""
    read_param: np.ndarray | None = field(default=None, repr=False)
    """int64[r]: the param of each read pair."""

    def __post_init__(self) -> None:
        if self.param_bytes is None:
            owners = np.flatnonzero(self.weight_bytes > 0).astype(np.int64)
            object.__setattr__(self, "param_bytes", self.weight_bytes[owners].astype(np.int64))
            object.__setattr__(self, "read_node", owners)
            object.__setattr__(self, "read_param", np.arange(len(owners), dtype=np.int64))
        readers = np.bincount(self.read_param, minlength=len(self.param_bytes))
        shared = readers[self.read_param] > 1
        private = np.bincount(
            self.read_node[~shared],
            weights=self.param_bytes[self.read_param[~shared]],
            minlength=self.num_nodes,
        )
        object.__setattr__(self, "_private", private.astype(np.int64))
        object.__setattr__(self, "_shared_reads", shared)

    @property
    def private_weight_bytes(self) -> np.ndarray:
        """int64[n]: bytes of the params that only this node reads (equal to `weight_bytes` when
        nothing is shared)."""
        return self._private  # type: ignore[attr-defined]

    @property
    def shared_params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(param ids, their bytes, their readers as (param id, node) pairs) of the params read by two or
        more nodes; the memory rule stores each once per chip that has a reader."""
        mask = self._shared_reads  # type: ignore[attr-defined]
        ids = np.unique(self.read_param[mask])
        return ids, self.param_bytes[ids], np.stack([self.read_param[mask], self.read_node[mask]])

    @property
    def total_weight_bytes(self) -> int:
        """Bytes of all params, each counted once (what the whole model stores)."""
        return int(self.param_bytes.sum())

    @property
    def num_nodes(self) -> int:
        return len(self.kinds)

    def locate_nodes(self, nodes: tuple[int, ...]) -> str:
        """`file:line:col: ` of the last of `nodes` (the consumer of an edge) when one or two
        nodes are named and that op was parsed from a file; empty otherwise (a group of ops has no
        one place)."""
        if not 1 <= len(nodes) <= 2 or not self.ops:
            return ""
        op = self.ops[nodes[-1]]
        # The op's own position only: its function's would point at the wrong line.
        return locate(op) if locate(op) != locate(op.parent_op()) else ""

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    @property
    def edge_bytes(self) -> np.ndarray:
        return self.output_bytes[self.src]

    @property
    def topo_order(self) -> np.ndarray:
        """Nodes are stored in topological order; kept explicit for readers of the arrays."""
        return np.arange(self.num_nodes, dtype=np.int32)

    @property
    def working_set_bytes(self) -> np.ndarray:
        """Activation bytes a node touches while it runs (its inputs and its output)."""
        return self.activation_in_bytes + self.output_bytes

    def successors(self) -> list[np.ndarray]:
        order = np.argsort(self.src, kind="stable")
        splits = np.searchsorted(self.src[order], np.arange(1, self.num_nodes))
        return np.split(self.dst[order], splits)

    def predecessors(self) -> list[np.ndarray]:
        order = np.argsort(self.dst, kind="stable")
        splits = np.searchsorted(self.dst[order], np.arange(1, self.num_nodes))
        return np.split(self.src[order], splits)

    def subset_summary(self) -> str:
        return (
            f"{self.name}: {self.num_nodes} ops, {self.num_edges} edges, "
            f"{self.flops.sum() / 1e9:.2f} GFLOP, {self.total_weight_bytes / 2**20:.1f} MiB weights"
        )


def _dtype_name(t: TensorType) -> str:
    return str(t.element_type)


def single_function(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    if len(funcs) != 1:
        programs = [op for op in module.ops if op.name == "mcm.program"]
        where = locate(funcs[1] if len(funcs) > 1 else programs[0] if programs else module)
        # The split output (chiplets.mlir) is what a user most often hands over by mistake.
        split = (
            " (it holds an mcm.program, the output of split-chiplets: give the function before "
            "the split, e.g. compile's placed.mlir, or simulate its schedule.json)"
            if programs and not funcs
            else ""
        )
        raise ChiplexError(
            f"{where}expected exactly one func.func in the module, found {len(funcs)}{split}"
        )
    return funcs[0]


def samples_per_microbatch(function: func.FuncOp) -> int:
    """The leading dimension of the first argument: the batch one pipeline pass processes."""
    arg_types = function.function_type.inputs.data
    if arg_types and isinstance(arg_types[0], TensorType) and arg_types[0].get_shape():
        return max(int(arg_types[0].get_shape()[0]), 1)
    return 1


def _checked_bytes(tensor_type: Attribute, op: Operation) -> int:
    nbytes = tensor_bytes(tensor_type)
    if nbytes > MAX_TENSOR_BYTES:
        raise ChiplexError(
            f"{locate(op)}{op.name}: {tensor_type} holds {nbytes:.3g} bytes, more than the "
            f"{MAX_TENSOR_BYTES / 2**50:g} PiB chiplex accepts (a typo in a dimension?)"
        )
    return nbytes


def graph_from_func(function: func.FuncOp) -> Graph:
    """Build the graph view of a function whose body is `nn` ops and a `func.return`."""
    from chiplex.ir.nn import NNOp

    where = locate(function)
    if not function.body.blocks:
        raise ChiplexError(f"{where}function @{function.sym_name.data} has no body")
    if len(function.body.blocks) > 1:
        second = function.body.blocks.first.next_block  # type: ignore[union-attr]
        first_op = second.first_op if second is not None else None
        raise ChiplexError(
            f"{locate(first_op) or where}function @{function.sym_name.data} has "
            f"{len(function.body.blocks)} blocks: chiplex places straight-line code (one block)"
        )
    block = function.body.blocks.first
    assert block is not None
    node_of: dict[Operation, int] = {}
    ops: list[Operation] = []
    names: list[str] = []
    kinds: list[str] = []
    dtypes: list[str] = []
    flops: list[float] = []
    output_bytes: list[int] = []
    input_bytes: list[int] = []
    weight_bytes: list[int] = []
    act_in_bytes: list[int] = []
    params: list[tuple[str, ...]] = []
    param_of: dict[Operation, int] = {}
    param_bytes: list[int] = []
    reads: list[tuple[int, int]] = []
    edges: set[tuple[int, int]] = set()
    for op in block.ops:
        if isinstance(op, func.ReturnOp) or op.name in STATIONARY_OPS:
            continue
        if not isinstance(op, NNOp):
            raise ChiplexError(
                f"{locate(op)}unsupported op '{op.name}' in @{function.sym_name.data}: "
                "only nn ops can be placed"
            )
        if len(op.results) != 1 or not isinstance(op.results[0].type, TensorType):
            raise ChiplexError(f"{locate(op)}op '{op.name}' must have exactly one tensor result")
        index = len(ops)
        node_of[op] = index
        ops.append(op)
        result = op.results[0]
        names.append(
            f"%{result.name_hint}" if result.name_hint else f"{op.name.removeprefix('nn.')}_{index}"
        )
        kinds.append(op.name)
        dtypes.append(_dtype_name(result.type))
        flops.append(float(op.flops()))
        output_bytes.append(_checked_bytes(result.type, op))
        host = weights = activations = 0
        used_params: list[str] = []
        seen: set[object] = set()
        for operand in op.operands:
            if operand in seen:
                continue
            seen.add(operand)
            nbytes = _checked_bytes(operand.type, op)
            if isinstance(operand, BlockArgument):
                host += nbytes
                activations += nbytes
            elif isinstance(operand, OpResult) and operand.op.name in STATIONARY_OPS:
                weights += nbytes
                if operand.op not in param_of:
                    param_of[operand.op] = len(param_bytes)
                    param_bytes.append(nbytes)
                reads.append((index, param_of[operand.op]))
                if operand.op.name == "nn.param":
                    used_params.append(operand.op.param_name.data)  # type: ignore[attr-defined]
            elif isinstance(operand, OpResult) and operand.op in node_of:
                activations += nbytes
                edges.add((node_of[operand.op], index))
            else:
                raise ChiplexError(
                    f"{locate(op)}op '{op.name}' reads a value defined outside the function body"
                )
        input_bytes.append(host)
        weight_bytes.append(weights)
        act_in_bytes.append(activations)
        params.append(tuple(used_params))
    if not ops:
        raise ChiplexError(
            f"{where}function @{function.sym_name.data} has no compute op (only params, "
            "constants and the return): there is nothing to place"
        )
    edge_list = sorted(edges)
    src = np.array([e[0] for e in edge_list], dtype=np.int32)
    dst = np.array([e[1] for e in edge_list], dtype=np.int32)
    return Graph(
        name=function.sym_name.data,
        op_names=tuple(names),
        kinds=tuple(kinds),
        dtypes=tuple(dtypes),
        is_matrix=np.array([k in MATRIX_OPS for k in kinds], dtype=bool),
        flops=np.array(flops, dtype=np.float64),
        output_bytes=np.array(output_bytes, dtype=np.int64),
        input_bytes=np.array(input_bytes, dtype=np.int64),
        weight_bytes=np.array(weight_bytes, dtype=np.int64),
        activation_in_bytes=np.array(act_in_bytes, dtype=np.int64),
        src=src,
        dst=dst,
        param_names=tuple(params),
        samples_per_microbatch=samples_per_microbatch(function),
        ops=tuple(ops),
        param_bytes=np.array(param_bytes, dtype=np.int64),
        read_node=np.array([r[0] for r in reads], dtype=np.int64),
        read_param=np.array([r[1] for r in reads], dtype=np.int64),
    )


def graph_from_module(module: ModuleOp) -> Graph:
    return graph_from_func(single_function(module))


def make_graph(
    *,
    kinds: list[str],
    edges: list[tuple[int, int]],
    flops: list[float],
    output_bytes: list[int],
    weight_bytes: list[int] | None = None,
    dtypes: list[str] | None = None,
    name: str = "graph",
    op_names: list[str] | None = None,
    params: list[tuple[int, ...]] | None = None,
    param_bytes: list[int] | None = None,
) -> Graph:
    """A graph built directly from arrays (tests, synthetic corpora); nodes must be in topological order.

    Weights: either `weight_bytes` per node (each node owns its weights, nothing is shared), or
    `params` (the param ids each node reads) with `param_bytes` (bytes per param id), which may share."""
    n = len(kinds)
    reads: np.ndarray | None = None
    if params is not None:
        if param_bytes is None:
            raise ValueError("params needs param_bytes")
        pairs = sorted({(v, p) for v, ps in enumerate(params) for p in ps})
        reads = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        table = np.array(param_bytes, dtype=np.int64)
        weight_bytes = (
            np.bincount(reads[:, 0], weights=table[reads[:, 1]], minlength=n)
            .astype(np.int64)
            .tolist()
        )
    elif weight_bytes is None:
        raise ValueError("make_graph needs weight_bytes or params")
    unique = sorted(set(edges))
    for u, v in unique:
        if not (0 <= u < v < n):
            raise ValueError(f"edge {u} -> {v} is not forward in a topological order of {n} nodes")
    src = np.array([u for u, _ in unique], dtype=np.int32)
    dst = np.array([v for _, v in unique], dtype=np.int32)
    out = np.array(output_bytes, dtype=np.int64)
    act_in = np.zeros(n, dtype=np.int64)
    np.add.at(act_in, dst, out[src])
    return Graph(
        name=name,
        op_names=tuple(op_names or [f"op{i}" for i in range(n)]),
        kinds=tuple(kinds),
        dtypes=tuple(dtypes or ["bf16"] * n),
        is_matrix=np.array([k in MATRIX_OPS for k in kinds], dtype=bool),
        flops=np.array(flops, dtype=np.float64),
        output_bytes=out,
        input_bytes=np.zeros(n, dtype=np.int64),
        weight_bytes=np.array(weight_bytes, dtype=np.int64),
        activation_in_bytes=act_in,
        src=src,
        dst=dst,
        param_names=tuple(() for _ in range(n)),
        param_bytes=None if reads is None else np.array(param_bytes, dtype=np.int64),
        read_node=None if reads is None else reads[:, 0],
        read_param=None if reads is None else reads[:, 1],
    )
