"""The graph view: a `func.func` of `nn` ops as numpy arrays, for placement, learning and simulation.

Nodes are the compute ops of the function body, in block order (which is a topological order).
`nn.param` and `nn.constant` are stationary data, not nodes: their bytes count as the weight bytes of
every node that uses them (a weight used by ops on two chips is stored on both). Function arguments
arrive from the host; their bytes count in the consumer's `input_bytes`. An edge u -> v means v reads
u's result, and moving it between chips costs `output_bytes[u]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, BlockArgument, Operation, OpResult

from chiplex.errors import ChiplexError
from chiplex.ir.locations import locate
from chiplex.ir.types import tensor_bytes

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

    @property
    def num_nodes(self) -> int:
        return len(self.kinds)

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
            f"{self.flops.sum() / 1e9:.2f} GFLOP, {self.weight_bytes.sum() / 2**20:.1f} MiB weights"
        )


def _dtype_name(t: TensorType) -> str:
    return str(t.element_type)


def single_function(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    if len(funcs) != 1:
        where = locate(funcs[1] if len(funcs) > 1 else module)
        raise ChiplexError(
            f"{where}expected exactly one func.func in the module, found {len(funcs)}"
        )
    return funcs[0]


def samples_per_microbatch(function: func.FuncOp) -> int:
    """The leading dimension of the first argument: the batch one pipeline pass processes."""
    arg_types = function.function_type.inputs.data
    if arg_types and isinstance(arg_types[0], TensorType) and arg_types[0].get_shape():
        return max(int(arg_types[0].get_shape()[0]), 1)
    return 1


MAX_TENSOR_BYTES = 2**50
"""1 PiB: a larger tensor is a typo, and its sizes would overflow the int64 arrays of the graph."""


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
    )


def graph_from_module(module: ModuleOp) -> Graph:
    return graph_from_func(single_function(module))


def make_graph(
    *,
    kinds: list[str],
    edges: list[tuple[int, int]],
    flops: list[float],
    output_bytes: list[int],
    weight_bytes: list[int],
    dtypes: list[str] | None = None,
    name: str = "graph",
    op_names: list[str] | None = None,
) -> Graph:
    """A graph built directly from arrays (tests, synthetic corpora); nodes must be in topological order."""
    n = len(kinds)
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
    )
