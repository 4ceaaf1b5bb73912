"""Import a `torch.nn.Module` into a `func.func` of `nn` ops, built in memory.

The module is captured with `torch.export` and each ATen node of the exported graph becomes zero or
more `nn` ops, built through the xDSL Python API (parsing text would be ten times slower). The
mapping rules:

* **Parameters** become `nn.param` ops named by their state-dict name, in the weight dtype (`i8`
  by default); their shape is the parameter's, except that views applied to a parameter (a
  transpose, a reshape) are folded into the stored layout: a parameter has no data in the IR, so
  `linear`'s weight `[out, in]` is stored as the `[in, out]` matrix `nn.matmul` reads. A parameter
  used in two layouts (tied embeddings) is stored once and the second layout is an explicit op.
* **Buffers and constants** (a causal mask, batch-norm statistics) are evaluated: ops whose tensor
  inputs are all constant are run with torch at import time, so a mask built inline from `ones` and
  `triu` is one stored tensor. A constant read by a compute op becomes `nn.constant` when all its
  elements are equal, else an `nn.param` named after the buffer, in the activation dtype.
* **Activations**: every floating-point value gets the activation dtype (`bf16` by default, None
  keeps torch's); integer and boolean values keep their type.
* **Views and no-op casts** fold away: `contiguous`, `clone`, `alias`, a cast between two types that
  map to the same IR type, and a view that keeps the shape produce no op; a real reshape becomes
  `nn.reshape`, a permutation `nn.transpose`.
* **Unsupported ops** are collected over the whole graph (after a retry on the graph decomposed to
  core ATen) and reported in one ChiplexError: `op: count (first at file:line)`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import operator
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.types import DTYPE_NAMES, parse_dtype

__all__ = [
    "DTYPE_NAMES",
    "ImportStats",
    "build_model",
    "import_module",
    "import_with_constants",
    "load_factory",
    "load_model_spec",
    "module_stats",
    "parse_dtype",
    "parse_input_spec",
]

# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "f32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "f16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "float64": torch.float64,
    "f64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "i64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "i32": torch.int32,
    "int": torch.int32,
    "int16": torch.int16,
    "i16": torch.int16,
    "int8": torch.int8,
    "i8": torch.int8,
    "uint8": torch.uint8,
    "u8": torch.uint8,
    "bool": torch.bool,
}


def _torch_elem(dtype: torch.dtype) -> Attribute:
    """The IR element type that keeps a torch dtype as it is."""
    if dtype == torch.bool:
        return i1
    if dtype == torch.uint8:
        return IntegerType(8, Signedness.UNSIGNED)
    table: dict[torch.dtype, Attribute] = {
        torch.float32: f32,
        torch.float16: f16,
        torch.bfloat16: bf16,
        torch.float64: f64,
        torch.int8: i8,
        torch.int16: i16,
        torch.int32: i32,
        torch.int64: i64,
    }
    if dtype not in table:
        raise _Unsupported(f"dtype {dtype}")
    return table[dtype]


def _is_float_elem(t: Attribute) -> bool:
    return isinstance(t, Float16Type | BFloat16Type | Float32Type | Float64Type)


def _rounds(value: float, elem: Attribute) -> bool:
    """Whether storing `value` in the float type `elem` changes it (beyond float32 rounding)."""
    stored = FloatAttr(float(value), cast(Float64Type, elem)).value.data
    return stored != value and stored != float(torch.tensor(value, dtype=torch.float32).item())


# ---------------------------------------------------------------------------------------------
# Values the importer tracks per FX node
# ---------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """A node the importer cannot map; the message says why (collected, reported together)."""


@dataclass(frozen=True)
class _View:
    """A reshape (`perm` None) or a permutation applied to a parameter, folded into its layout."""

    shape: tuple[int, ...]
    perm: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _ParamRef:
    """A parameter, possibly seen through views; becomes an `nn.param` at its first compute use."""

    name: str
    base_shape: tuple[int, ...]
    dtype: torch.dtype
    views: tuple[_View, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape if self.views else self.base_shape

    def view(self, v: _View) -> _ParamRef:
        if v.shape == self.shape and (v.perm is None or v.perm == tuple(range(len(v.shape)))):
            return self
        return _ParamRef(self.name, self.base_shape, self.dtype, self.views + (v,))


@dataclass(eq=False)
class _Const:
    """A tensor known at import time (buffer, lifted constant, or folded from those)."""

    tensor: torch.Tensor
    name: str


class _Poison:
    """The value of a node that could not be imported: its users are skipped, not reported."""


_POISON = _Poison()

_Value = Any  # SSAValue | _ParamRef | _Const | python scalar | tuple/list of those | _Poison


# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------

_VALID_NAME = re.compile(r"[A-Za-z_$.-][\w$.-]*")
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH_DIR = str(Path(torch.__file__).parent)

_BINARY: dict[str, type[nn.NNOp]] = {
    "add": nn.AddOp,
    "sub": nn.SubOp,
    "mul": nn.MulOp,
    "div": nn.DivOp,
    "maximum": nn.MaxOp,
    "minimum": nn.MinOp,
    "pow": nn.PowOp,
}
_UNARY: dict[str, type[nn.NNOp]] = {
    "relu": nn.ReluOp,
    "gelu": nn.GeluOp,
    "tanh": nn.TanhOp,
    "sigmoid": nn.SigmoidOp,
    "silu": nn.SiluOp,
    "exp": nn.ExpOp,
    "log": nn.LogOp,
    "erf": nn.ErfOp,
    "sqrt": nn.SqrtOp,
    "rsqrt": nn.RsqrtOp,
    "neg": nn.NegOp,
}
# Ops that only change how a tensor is seen or are identities at inference: the input passes through.
_IDENTITY = frozenset(
    {"contiguous", "clone", "alias", "detach", "lift_fresh_copy", "dropout", "feature_dropout"}
    | {"alpha_dropout"}
)
# Ops without a tensor result that export leaves in the graph as checks: dropped.
_CHECKS = frozenset(
    {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}
    | {"sym_constrain_range", "_assert_async", "_functional_assert_async"}
)
# Ops whose result is a fresh constant tensor (no tensor inputs): evaluated at import time.
_FACTORIES = frozenset(
    {"full", "zeros", "ones", "empty", "arange", "scalar_tensor", "eye", "tensor", "linspace"}
)


def _packet(target: object) -> str:
    """`aten.add.Tensor` -> `add`; a Python function -> its name."""
    overload = getattr(target, "overloadpacket", None)
    if overload is not None:
        return str(overload.__name__)
    return getattr(target, "__name__", str(target))


def _location(node: torch.fx.Node) -> str:
    """`file:line` of the user's code that produced the node (the innermost frame outside torch)."""
    trace = node.meta.get("stack_trace") or ""
    frames = _FRAME.findall(trace)
    if not frames:
        return f"node {node.name}"
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    path, line = (user or frames)[-1]
    return f"{path}:{line}"


def _module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path if isinstance(path, str) else ""


@dataclass
class _Report:
    """Unsupported ops: count and first location per key, in order of first appearance."""

    entries: dict[str, tuple[int, str]] = field(default_factory=dict)

    def add(self, key: str, node: torch.fx.Node) -> None:
        count, where = self.entries.get(key, (0, _location(node)))
        self.entries[key] = (count + 1, where)

    def message(self, what: str) -> str:
        uses = sum(c for c, _ in self.entries.values())
        lines = [
            f"cannot import {what}: {len(self.entries)} unsupported ATen "
            f"op{'s' if len(self.entries) != 1 else ''} ({uses} use{'s' if uses != 1 else ''}):"
        ]
        for key, (count, where) in self.entries.items():
            lines.append(f"  {key}: {count} (first at {where})")
        return "\n".join(lines)


class _Importer:
    def __init__(
        self,
        ep: torch.export.ExportedProgram,
        weight_type: Attribute | None,
        act_type: Attribute | None,
        func_name: str,
    ) -> None:
        self.ep = ep
        self.weight_type = weight_type
        self.act_type = act_type
        self.func_name = func_name
        self.env: dict[torch.fx.Node, _Value] = {}
        self.ops: list[Operation] = []
        self.report = _Report()
        self.hints: dict[str, int] = {}
        self.path = ""
        self.node: torch.fx.Node | None = None
        # Materialised parameters: name -> (value, views it was stored with).
        self.params: dict[str, tuple[SSAValue, tuple[_View, ...]]] = {}
        self.param_views: dict[tuple[str, tuple[_View, ...]], SSAValue] = {}
        # Keyed by the object (identity), which keeps it alive: an `id()` key could be reused by a
        # later temporary _Const and hand back the wrong tensor.
        self.consts: dict[_Const, SSAValue] = {}
        self.const_names: dict[str, list[tuple[torch.Tensor, SSAValue]]] = {}
        self.const_values: dict[str, torch.Tensor] = {}
        self.missing: set[object] = set()
        """Targets without a handler: decomposing them may help."""
        self.scalars: dict[tuple[float | int | bool, Attribute], SSAValue] = {}
        self.users_cache: dict[torch.fx.Node, list[torch.fx.Node]] = {}

    # -- types -----------------------------------------------------------------------------

    def elem(self, dtype: torch.dtype, *, weight: bool = False) -> Attribute:
        """The IR element type of a torch dtype: floats take the weight or activation dtype."""
        if dtype.is_floating_point:
            target = self.weight_type if weight else self.act_type
            if target is not None:
                return target
        return _torch_elem(dtype)

    def meta_type(self, node: torch.fx.Node) -> TensorType:
        val = node.meta.get("val")
        if isinstance(val, tuple | list) and val:
            val = val[0]  # multi-result ops (max_pool2d_with_indices): the first is the value
        if not isinstance(val, torch.Tensor):
            raise _Unsupported("result without tensor metadata")
        return TensorType(self.elem(val.dtype), [int(d) for d in val.shape])

    # -- emitting ---------------------------------------------------------------------------

    def hint(self, base: str) -> str | None:
        if not _VALID_NAME.fullmatch(base):
            base = "v." + base
            if not _VALID_NAME.fullmatch(base):
                return None
        n = self.hints.get(base, 0) + 1
        self.hints[base] = n
        # A `.N` suffix, not `_N`: xDSL strips `_N` from hints, which would merge names.
        return base if n == 1 else f"{base}.{n}"

    def emit(self, op: Operation, hint: str | None = None) -> SSAValue:
        self.ops.append(op)
        result = op.results[0]
        if hint is None:
            kind = op.name.removeprefix("nn.")
            hint = f"{self.path}.{kind}" if self.path else kind
        result.name_hint = self.hint(hint)
        return result

    def scalar(self, value: float | int | bool, elem: Attribute) -> SSAValue:
        """A rank-0 splat constant, shared by every use of the same value and type."""
        if isinstance(value, bool):
            value = int(value)
        if not _is_float_elem(elem) and isinstance(value, float) and not value.is_integer():
            elem = self.act_type or f32
        if _is_float_elem(elem) and math.isfinite(value) and _rounds(value, elem):
            # The activation dtype would round the value (0.1 in bf16 is 0.10009765625) and with
            # it what the IR computes; a scalar costs nothing, so it keeps the value in f32.
            elem = f32
        key = (value, elem)
        if key not in self.scalars:
            op = nn.ConstantOp(value, TensorType(elem, []))
            self.scalars[key] = self.emit(op, "cst")
        return self.scalars[key]

    def materialize_param(self, ref: _ParamRef) -> SSAValue:
        key = (ref.name, ref.views)
        if key in self.param_views:
            return self.param_views[key]
        if ref.name not in self.params:
            # First use: store the parameter directly in the layout this use reads.
            t = TensorType(self.elem(ref.dtype, weight=True), list(ref.shape))
            op = nn.ParamOp(ref.name, t)
            if ref.views:
                # Say how the stored layout derives from the state-dict tensor, for whoever loads
                # real weights later (`permute(1, 0)` for a linear layer's weight).
                op.attributes["torch_view"] = StringAttr(_describe_views(ref.views))
            value = self.emit(op, ref.name)
            self.params[ref.name] = (value, ref.views)
        else:
            # Another layout of a stored parameter: undo the stored views, apply this use's.
            value, stored = self.params[ref.name]
            shapes = [ref.base_shape] + [v.shape for v in stored]
            for i in range(len(stored) - 1, -1, -1):
                value = self.apply_view(value, _View(shapes[i], _inverse(stored[i].perm)))
            for v in ref.views:
                value = self.apply_view(value, v)
        self.param_views[key] = value
        return value

    def apply_view(self, value: SSAValue, v: _View) -> SSAValue:
        if v.perm is not None:
            return self.emit(nn.TransposeOp(value, list(v.perm)))
        return self.emit(nn.ReshapeOp(value, _retype(value, v.shape)))

    def materialize_const(self, c: _Const) -> SSAValue:
        if c in self.consts:
            return self.consts[c]
        t = c.tensor
        elem = self.elem(t.dtype)
        ttype = TensorType(elem, list(t.shape))
        flat = t.reshape(-1)
        if flat.numel() > 0 and bool((flat == flat[0]).all()):
            first = flat[0].item()
            value = self.emit(nn.ConstantOp(first, ttype), "cst")
        else:
            # Equal tensors derived from the same buffer (each layer slicing one mask) share a param.
            same = self.const_names.setdefault(c.name, [])
            for other, stored in same:
                if other.shape == t.shape and other.dtype == t.dtype and torch.equal(other, t):
                    self.consts[c] = stored
                    return stored
            name = c.name if not same else f"{c.name}.{len(same) + 1}"
            value = self.emit(nn.ParamOp(name, ttype), name)
            same.append((t, value))
            self.const_values[name] = t
        self.consts[c] = value
        return value

    def value(self, v: _Value, elem: Attribute | None = None) -> SSAValue:
        """An SSA value for an operand; Python scalars become rank-0 constants of type `elem`."""
        if isinstance(v, SSAValue):
            return v
        if isinstance(v, _ParamRef):
            return self.materialize_param(v)
        if isinstance(v, _Const):
            return self.materialize_const(v)
        if isinstance(v, bool | int | float):
            return self.scalar(v, elem if elem is not None else (self.act_type or f32))
        raise _Unsupported(f"operand of kind {type(v).__name__}")

    # -- the graph --------------------------------------------------------------------------

    def run(self) -> ModuleOp:
        sig = self.ep.graph_signature
        param_of = dict(sig.inputs_to_parameters)
        buffer_of = dict(sig.inputs_to_buffers)
        const_of = dict(sig.inputs_to_lifted_tensor_constants)
        user_inputs = set(sig.user_inputs)
        arg_types: list[Attribute] = []
        arg_nodes: list[torch.fx.Node] = []
        graph = self.ep.graph_module.graph
        for node in graph.nodes:
            if node.op != "placeholder":
                continue
            val = node.meta.get("val")
            if node.name in param_of:
                assert isinstance(val, torch.Tensor)
                name = param_of[node.name]
                self.env[node] = _ParamRef(name, tuple(int(d) for d in val.shape), val.dtype)
            elif node.name in buffer_of or node.name in const_of:
                target = buffer_of.get(node.name) or const_of[node.name]
                tensor = self.ep.state_dict.get(target)
                if tensor is None:
                    tensor = self.ep.constants[target]
                if isinstance(tensor, torch.nn.Parameter):
                    tensor = tensor.data
                self.env[node] = _Const(cast(torch.Tensor, tensor).detach(), target)
            elif node.name in user_inputs and isinstance(val, torch.Tensor):
                arg_types.append(TensorType(self.elem(val.dtype), [int(d) for d in val.shape]))
                arg_nodes.append(node)
            else:
                self.env[node] = val  # a non-tensor user input: export specialised it
        block = Block(arg_types=arg_types)
        for node, arg in zip(arg_nodes, block.args, strict=True):
            arg.name_hint = self.hint(node.name)
            self.env[node] = arg

        outputs: list[SSAValue] = []
        for node in graph.nodes:
            if node.op == "call_function":
                self.node = node
                self.path = _module_path(node)
                self.import_node(node)
            elif node.op == "output":
                self.node = node
                self.path = ""
                for r in _flatten(node.args[0]):
                    if r is None:
                        continue
                    val = self.env.get(r, _POISON) if isinstance(r, torch.fx.Node) else r
                    if isinstance(val, _Poison):
                        continue
                    try:
                        outputs.append(self.value(val))
                    except _Unsupported as e:
                        self.report.add(f"output ({e})", node)
            elif node.op not in ("placeholder",):
                self.report.add(f"{node.op} {node.target}", node)
        if self.report.entries:
            raise _ImportFailed(self.report)
        ret = func.ReturnOp(*outputs)
        block.add_ops(self._live_ops())
        block.add_op(ret)
        function = func.FuncOp(
            self.func_name, (arg_types, [o.type for o in outputs]), Region(block)
        )
        return ModuleOp([function])

    def _live_ops(self) -> list[Operation]:
        """The emitted ops minus those nothing reads (left behind by folded view chains)."""
        live: list[Operation] = []
        for op in reversed(self.ops):
            if any(r.uses for r in op.results):
                live.append(op)
            else:
                op.erase()
        live.reverse()
        return live

    def import_node(self, node: torch.fx.Node) -> None:
        args = torch.fx.node.map_arg(node.args, lambda n: self.env.get(n, _POISON))
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: self.env.get(n, _POISON))
        flat = list(_flatten((args, kwargs)))
        name = _packet(node.target)
        if any(isinstance(a, _Poison) for a in flat):
            # Downstream of a failure: still list an op that has no mapping at all, so the
            # report names every unsupported op, not only the first of a chain.
            if node.target is not operator.getitem and name not in _HANDLERS | _FOLDABLE:
                self.report.add(str(node.target), node)
                self.missing.add(node.target)
            self.env[node] = _POISON
            return
        if node.target is operator.getitem:
            self.env[node] = self.getitem(args[0], args[1], node)
            return
        if name in _CHECKS:
            self.env[node] = None
            return
        # Constant folding: nothing here depends on the inputs or the weights.
        tensors = [a for a in flat if isinstance(a, _Const | _ParamRef | SSAValue)]
        if all(isinstance(a, _Const) for a in tensors) and (tensors or name in _FACTORIES):
            try:
                self.env[node] = self.fold(node, args, kwargs)
                return
            except Exception:  # noqa: BLE001 - fall back to importing the op normally
                pass
        handler = _HANDLERS.get(name)
        if handler is None:
            self.report.add(str(node.target), node)
            self.missing.add(node.target)
            self.env[node] = _POISON
            return
        try:
            self.env[node] = handler(self, node, *args, **kwargs)
        except _Unsupported as e:
            self.report.add(f"{node.target} ({e})", node)
            self.env[node] = _POISON
        except VerifyException as e:
            self.report.add(f"{node.target} ({e})", node)
            self.env[node] = _POISON

    def fold(self, node: torch.fx.Node, args: Any, kwargs: Any) -> _Value:
        consts = [a for a in _flatten((args, kwargs)) if isinstance(a, _Const)]
        name = consts[0].name if consts else f"const.{node.name}"

        def unwrap(a: Any) -> Any:
            if isinstance(a, _Const):
                return a.tensor
            if isinstance(a, list | tuple):
                return type(a)(unwrap(x) for x in a)
            if isinstance(a, dict):
                return {k: unwrap(x) for k, x in a.items()}
            return a

        with torch.no_grad():
            out = cast(Callable[..., Any], node.target)(*unwrap(args), **unwrap(kwargs))

        def wrap(o: Any) -> Any:
            if isinstance(o, torch.Tensor):
                return _Const(o, name)
            if isinstance(o, list | tuple):
                return type(o)(wrap(x) for x in o)
            return o

        return wrap(out)

    def getitem(self, container: _Value, index: Any, node: torch.fx.Node) -> _Value:
        item = container[index]
        if item is None:
            producer = cast(torch.fx.Node, node.args[0]).target
            self.report.add(f"{producer} (result #{index} is not computed by nn ops)", node)
            return _POISON
        return item

    def users(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        if node not in self.users_cache:
            self.users_cache[node] = list(node.users)
        return self.users_cache[node]


class _ImportFailed(Exception):
    def __init__(self, report: _Report) -> None:
        super().__init__("unsupported ops")
        self.report = report


def _flatten(x: Any) -> Iterator[Any]:
    if isinstance(x, list | tuple):
        for y in x:
            yield from _flatten(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _flatten(y)
    else:
        yield x


def _describe_views(views: Sequence[_View]) -> str:
    parts = []
    for v in views:
        if v.perm is not None:
            parts.append(f"permute({', '.join(map(str, v.perm))})")
        else:
            parts.append(f"reshape({', '.join(map(str, v.shape))})")
    return ".".join(parts)


def _inverse(perm: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if perm is None:
        return None
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _retype(value: SSAValue, shape: Sequence[int]) -> TensorType:
    return TensorType(cast(TensorType, value.type).get_element_type(), list(shape))


def _shape_of(v: _Value) -> tuple[int, ...]:
    if isinstance(v, SSAValue):
        return tuple(cast(TensorType, v.type).get_shape())
    if isinstance(v, _ParamRef):
        return v.shape
    if isinstance(v, _Const):
        return tuple(v.tensor.shape)
    if isinstance(v, bool | int | float):
        return ()
    raise _Unsupported(f"operand of kind {type(v).__name__}")


def _elem_of(imp: _Importer, v: _Value) -> Attribute:
    if isinstance(v, SSAValue):
        return cast(TensorType, v.type).get_element_type()
    if isinstance(v, _ParamRef):
        return imp.elem(v.dtype, weight=True)
    if isinstance(v, _Const):
        return imp.elem(v.tensor.dtype)
    raise _Unsupported(f"operand of kind {type(v).__name__}")


def _norm_dim(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def _pair(v: int | Sequence[int], default: Sequence[int] | None = None) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    vals = list(v)
    if not vals and default is not None:
        return list(default)
    if len(vals) == 1:
        return vals * 2
    if len(vals) != 2:
        raise _Unsupported(f"{len(vals)}-D window (only 2-D is supported)")
    return vals


# ---------------------------------------------------------------------------------------------
# Handlers: (importer, node, *args, **kwargs) -> value
# ---------------------------------------------------------------------------------------------

_DECOMPOSE_ROUNDS = 4

_Handler = Callable[..., _Value]
_HANDLERS: dict[str, _Handler] = {}
# Ops without a handler that are fine on constants (folded): not reported downstream of a failure.
_FOLDABLE: dict[str, None] = dict.fromkeys(_CHECKS | _FACTORIES | {"triu", "tril", "logical_not"})


def _handles(*names: str) -> Callable[[_Handler], _Handler]:
    def register(fn: _Handler) -> _Handler:
        for n in names:
            _HANDLERS[n] = fn
        return fn

    return register


def _binary(
    imp: _Importer, node: torch.fx.Node, cls: type[nn.NNOp], a: _Value, b: _Value
) -> SSAValue:
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    lhs, rhs = imp.value(a, elem), imp.value(b, elem)
    return imp.emit(cls(lhs, rhs, rtype))  # type: ignore[call-arg]


for _name, _cls in _BINARY.items():

    def _make(cls: type[nn.NNOp]) -> _Handler:
        def handler(
            imp: _Importer, node: torch.fx.Node, a: _Value, b: _Value, *rest: Any, **kw: Any
        ) -> SSAValue:
            alpha = kw.get("alpha", rest[0] if rest else 1)
            if kw.get("rounding_mode") is not None:
                raise _Unsupported(f"rounding_mode={kw['rounding_mode']!r}")
            if alpha != 1:
                # add/sub with alpha: b * alpha first.
                if isinstance(b, bool | int | float):
                    b = b * alpha
                else:
                    b = imp.emit(nn.MulOp(imp.value(b), imp.scalar(alpha, _elem_of(imp, b))))
            return _binary(imp, node, cls, a, b)

        return handler

    _HANDLERS[_name] = _make(_cls)


@_handles("rsub")
def _rsub(imp: _Importer, node: torch.fx.Node, a: _Value, b: _Value, alpha: float = 1) -> SSAValue:
    if alpha != 1:
        if isinstance(a, bool | int | float):
            a = a * alpha
        else:
            a = imp.emit(nn.MulOp(imp.value(a), imp.scalar(alpha, _elem_of(imp, a))))
    return _binary(imp, node, nn.SubOp, b, a)


@_handles("reciprocal")
def _reciprocal(imp: _Importer, node: torch.fx.Node, x: _Value) -> SSAValue:
    return _binary(imp, node, nn.DivOp, 1.0, x)


@_handles("square")
def _square(imp: _Importer, node: torch.fx.Node, x: _Value) -> SSAValue:
    return _binary(imp, node, nn.MulOp, x, x)


for _name, _cls in _UNARY.items():

    def _make_unary(cls: type[nn.NNOp]) -> _Handler:
        def handler(
            imp: _Importer, node: torch.fx.Node, x: _Value, *rest: Any, **kw: Any
        ) -> SSAValue:
            # gelu's `approximate` and similar options change the value, not the cost.
            return imp.emit(cls(imp.value(x)))  # type: ignore[call-arg]

        return handler

    _HANDLERS[_name] = _make_unary(_cls)


@_handles("gelu")
def _gelu(
    imp: _Importer, node: torch.fx.Node, x: _Value, approximate: str = "none", **kw: Any
) -> SSAValue:
    v = imp.value(x)
    if kw.get("approximate", approximate) != "tanh":
        return imp.emit(nn.GeluOp(v))
    # nn.gelu is the exact (erf) GELU; the tanh form differs by up to 5e-4, so it is spelled out:
    # x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))). The factors are f32 scalars, which
    # an activation dtype like bf16 would round (0.044715 -> 0.04468).
    cube = imp.emit(nn.MulOp(imp.emit(nn.MulOp(v, v)), v))
    inner = imp.emit(nn.AddOp(v, imp.emit(nn.MulOp(cube, imp.scalar(0.044715, f32)))))
    t = imp.emit(nn.TanhOp(imp.emit(nn.MulOp(inner, imp.scalar(math.sqrt(2 / math.pi), f32)))))
    half = imp.emit(nn.MulOp(v, imp.scalar(0.5, f32)))
    return imp.emit(nn.MulOp(half, imp.emit(nn.AddOp(t, imp.scalar(1.0, f32)))))


@_handles("clamp", "clip", "clamp_min", "clamp_max", "hardtanh", "relu6")
def _clamp(imp: _Importer, node: torch.fx.Node, x: _Value, *bounds: Any, **kw: Any) -> SSAValue:
    name = _packet(node.target)
    names = {"clamp_min": ["min"], "clamp_max": ["max"], "hardtanh": ["min_val", "max_val"]}
    given = dict(zip(names.get(name, ["min", "max"]), bounds, strict=False)) | kw
    if name == "relu6":
        lo, hi = 0.0, 6.0
    elif name == "hardtanh":
        lo, hi = given.get("min_val", -1.0), given.get("max_val", 1.0)
    else:
        lo, hi = given.get("min"), given.get("max")
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    v = imp.value(x)
    if lo is not None:
        v = imp.emit(nn.MaxOp(v, imp.value(lo, elem), rtype))
    if hi is not None:
        v = imp.emit(nn.MinOp(v, imp.value(hi, elem), rtype))
    return v


# -- contractions ------------------------------------------------------------------------------


def _rhs_matrix(imp: _Importer, w: _Value, transpose: bool) -> SSAValue:
    """The [K, N] operand of nn.matmul; a parameter's transpose is folded into its layout."""
    shape = _shape_of(w)
    if len(shape) != 2:
        raise _Unsupported(f"weight of rank {len(shape)}")
    if not transpose:
        return imp.value(w)
    if isinstance(w, _ParamRef):
        return imp.materialize_param(w.view(_View((shape[1], shape[0]), (1, 0))))
    return imp.emit(nn.TransposeOp(imp.value(w), [1, 0]))


def _matmul_2d_rhs(
    imp: _Importer, node: torch.fx.Node, x: _Value, rhs: SSAValue, rtype: TensorType
) -> SSAValue:
    lhs = imp.value(x)
    xs = _shape_of(lhs)
    if len(xs) == 1:
        lhs = imp.emit(nn.ReshapeOp(lhs, _retype(lhs, (1, xs[0]))))
        out = imp.emit(nn.MatmulOp(lhs, rhs, _retype_elem(rtype, (1, rtype.get_shape()[-1]))))
        return imp.emit(nn.ReshapeOp(out, rtype))
    return imp.emit(nn.MatmulOp(lhs, rhs, rtype))


def _retype_elem(t: TensorType, shape: Sequence[int]) -> TensorType:
    return TensorType(t.get_element_type(), list(shape))


@_handles("linear")
def _linear(
    imp: _Importer, node: torch.fx.Node, x: _Value, w: _Value, b: _Value | None = None
) -> SSAValue:
    rtype = imp.meta_type(node)
    out = _matmul_2d_rhs(imp, node, x, _rhs_matrix(imp, w, transpose=True), rtype)
    if b is not None:
        out = imp.emit(nn.AddOp(out, imp.value(b), rtype))
    return out


@_handles("addmm")
def _addmm(
    imp: _Importer,
    node: torch.fx.Node,
    b: _Value,
    x: _Value,
    w: _Value,
    *,
    beta: float = 1,
    alpha: float = 1,
) -> SSAValue:
    if beta != 1 or alpha != 1:
        raise _Unsupported("alpha or beta other than 1")
    rtype = imp.meta_type(node)
    out = _matmul_2d_rhs(imp, node, x, _rhs_matrix(imp, w, transpose=False), rtype)
    return imp.emit(nn.AddOp(out, imp.value(b), rtype))


@_handles("mm")
def _mm(imp: _Importer, node: torch.fx.Node, a: _Value, b: _Value) -> SSAValue:
    return imp.emit(nn.MatmulOp(imp.value(a), imp.value(b), imp.meta_type(node)))


@_handles("bmm")
def _bmm(imp: _Importer, node: torch.fx.Node, a: _Value, b: _Value) -> SSAValue:
    return imp.emit(nn.BatchMatmulOp(imp.value(a), imp.value(b), imp.meta_type(node)))


def _broadcast_to(imp: _Importer, v: SSAValue, shape: Sequence[int]) -> SSAValue:
    """Materialise a broadcast (nn has no broadcast op): add a zero splat of the target shape."""
    if tuple(_shape_of(v)) == tuple(shape):
        return v
    elem = cast(TensorType, v.type).get_element_type()
    zero = imp.emit(nn.ConstantOp(0, TensorType(elem, list(shape))), "cst")
    return imp.emit(nn.AddOp(v, zero, TensorType(elem, list(shape))), None)


@_handles("matmul")
def _matmul(imp: _Importer, node: torch.fx.Node, a: _Value, b: _Value) -> SSAValue:
    rtype = imp.meta_type(node)
    sa, sb = _shape_of(a), _shape_of(b)
    if len(sb) == 2 and len(sa) >= 1:
        return _matmul_2d_rhs(imp, node, a, _rhs_matrix(imp, b, transpose=False), rtype)
    if len(sa) < 2 or len(sb) < 2:
        raise _Unsupported(f"matmul of ranks {len(sa)} and {len(sb)}")
    lhs, rhs = imp.value(a), imp.value(b)
    batch = tuple(torch.broadcast_shapes(torch.Size(sa[:-2]), torch.Size(sb[:-2])))
    lhs = _broadcast_to(imp, lhs, batch + sa[-2:])
    rhs = _broadcast_to(imp, rhs, batch + sb[-2:])
    return imp.emit(nn.BatchMatmulOp(lhs, rhs, rtype))


@_handles("conv2d", "convolution", "_convolution")
def _conv(
    imp: _Importer, node: torch.fx.Node, x: _Value, w: _Value, *args: Any, **kw: Any
) -> SSAValue:
    name = _packet(node.target)
    if name == "conv2d":
        names = ["bias", "stride", "padding", "dilation", "groups"]
        defaults: dict[str, Any] = {
            "bias": None,
            "stride": [1, 1],
            "padding": [0, 0],
            "dilation": [1, 1],
            "groups": 1,
        }
    else:
        names = ["bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups"]
        defaults = {"bias": None, "transposed": False, "groups": 1}
    p = defaults | dict(zip(names, args, strict=False)) | kw
    if p.get("transposed"):
        raise _Unsupported("transposed convolution")
    wshape = _shape_of(w)
    if len(wshape) != 4:
        raise _Unsupported(f"{len(wshape) - 2}-D convolution (only 2-D is supported)")
    padding = p["padding"]
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        else:
            # "same" with stride 1: symmetric padding only when the kernel is odd.
            dil = _pair(p["dilation"])
            total = [d * (k - 1) for d, k in zip(dil, wshape[2:], strict=True)]
            if any(t % 2 for t in total):
                raise _Unsupported("padding='same' with an even kernel (asymmetric padding)")
            padding = [t // 2 for t in total]
    rtype = imp.meta_type(node)
    out = imp.emit(
        nn.Conv2dOp(
            imp.value(x),
            imp.value(w),
            _pair(p["stride"]),
            _pair(padding),
            _pair(p["dilation"]),
            int(p["groups"]),
            rtype,
        )
    )
    bias = p["bias"]
    if bias is not None:
        channels = _shape_of(bias)[0]
        # The bias [C] broadcasts over NCHW as [C, 1, 1]: a free re-layout of the stored param.
        b = bias.view(_View((channels, 1, 1))) if isinstance(bias, _ParamRef) else bias
        bv = imp.value(b)
        if _shape_of(bv) != (channels, 1, 1):
            bv = imp.emit(nn.ReshapeOp(bv, _retype(bv, (channels, 1, 1))))
        out = imp.emit(nn.AddOp(out, bv, rtype))
    return out


# -- normalisation -----------------------------------------------------------------------------


@_handles("softmax", "_softmax", "_safe_softmax")
def _softmax(
    imp: _Importer, node: torch.fx.Node, x: _Value, dim: int, *rest: Any, **kw: Any
) -> SSAValue:
    v = imp.value(x)
    out = imp.emit(nn.SoftmaxOp(v, dim))
    rtype = imp.meta_type(node)
    if out.type != rtype:
        out = imp.emit(nn.CastOp(out, rtype))
    return out


@_handles("log_softmax", "_log_softmax")
def _log_softmax(
    imp: _Importer, node: torch.fx.Node, x: _Value, dim: int, *rest: Any, **kw: Any
) -> SSAValue:
    return imp.emit(nn.LogOp(_softmax(imp, node, x, dim)))


def _ones_or(
    imp: _Importer, v: _Value | None, shape: Sequence[int], fill: float, elem: Attribute
) -> SSAValue:
    if v is not None:
        return imp.value(v)
    return imp.emit(nn.ConstantOp(fill, TensorType(elem, list(shape))), "cst")


@_handles("layer_norm", "native_layer_norm")
def _layer_norm(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    shape: Sequence[int],
    weight: _Value | None = None,
    bias: _Value | None = None,
    eps: float = 1e-5,
    *rest: Any,
) -> _Value:
    elem = imp.weight_type or f32
    gamma = _ones_or(imp, weight, shape, 1.0, elem)
    beta = _ones_or(imp, bias, shape, 0.0, elem)
    out = imp.emit(nn.LayerNormOp(imp.value(x), gamma, beta, float(eps)))
    if _packet(node.target) == "native_layer_norm":
        return (out, None, None)
    return out


@_handles("batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit")
def _batch_norm(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    weight: _Value | None,
    bias: _Value | None,
    running_mean: _Value | None,
    running_var: _Value | None,
    *rest: Any,
    **kw: Any,
) -> _Value:
    name = _packet(node.target)
    training = rest[0] if name in ("batch_norm", "_native_batch_norm_legit") and rest else False
    if training or running_mean is None or running_var is None:
        raise _Unsupported("batch norm in training mode (call module.eval() before importing)")
    # eps follows momentum: (momentum, eps) for _no_training, (training, momentum, eps) otherwise.
    eps_at = 1 if name == "_native_batch_norm_legit_no_training" else 2
    eps = float(kw.get("eps", rest[eps_at] if len(rest) > eps_at else 1e-5))
    # Inference batch norm folds into a per-channel scale and bias: the affine parameters stand
    # for the folded tensors (same shape, same names); without them the statistics do. The folded
    # data goes to the importer's constants so that the IR can be run (chiplex.ir.interpret).
    scale_data, shift_data = _fold_batch_norm(imp, weight, bias, running_mean, running_var, eps)
    scale = imp.value(weight if weight is not None else _Const(scale_data, running_var.name))
    shift = imp.value(bias if bias is not None else _Const(shift_data, running_mean.name))
    for ref, data in ((weight, scale_data), (bias, shift_data)):
        if isinstance(ref, _ParamRef):
            imp.const_values[ref.name] = data
    out = imp.emit(nn.BatchNormOp(imp.value(x), scale, shift))
    if name == "batch_norm":
        return out
    return (out, None, None)


def _fold_batch_norm(
    imp: _Importer,
    weight: _Value | None,
    bias: _Value | None,
    running_mean: _Value,
    running_var: _Value,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """scale = weight / sqrt(var + eps), shift = bias - mean * scale (float32)."""

    def data(v: _Value | None, fill: float, like: torch.Tensor) -> torch.Tensor:
        if v is None:
            return torch.full_like(like, fill)
        if isinstance(v, _Const):
            return v.tensor.float()
        if isinstance(v, _ParamRef) and not v.views and v.name in imp.ep.state_dict:
            return imp.ep.state_dict[v.name].detach().float()
        raise _Unsupported("batch norm with computed statistics or affine parameters")

    if not isinstance(running_mean, _Const) or not isinstance(running_var, _Const):
        raise _Unsupported("batch norm with computed running statistics")
    var = running_var.tensor.float()
    scale = data(weight, 1.0, var) / torch.sqrt(var + eps)
    shift = data(bias, 0.0, var) - running_mean.tensor.float() * scale
    return scale, shift


# -- reductions and pooling --------------------------------------------------------------------


def _reduce(
    imp: _Importer, node: torch.fx.Node, cls: type[nn.NNOp], x: _Value, dims: Any, keepdim: bool
) -> SSAValue:
    v = imp.value(x)
    rank = len(_shape_of(v))
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        axes = list(range(rank))
    elif isinstance(dims, int):
        axes = [_norm_dim(dims, rank)]
    else:
        axes = [_norm_dim(d, rank) for d in dims]
    if rank == 0:
        return v
    return imp.emit(cls(v, axes, bool(keepdim), imp.meta_type(node)))  # type: ignore[call-arg]


@_handles("mean")
def _mean(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    dims: Any = None,
    keepdim: bool = False,
    **kw: Any,
) -> SSAValue:
    return _reduce(imp, node, nn.ReduceMeanOp, x, dims, keepdim)


@_handles("sum")
def _sum(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    dims: Any = None,
    keepdim: bool = False,
    **kw: Any,
) -> SSAValue:
    if isinstance(dims, torch.dtype):
        dims = None
    return _reduce(imp, node, nn.ReduceSumOp, x, dims, keepdim)


@_handles("amax")
def _amax(
    imp: _Importer, node: torch.fx.Node, x: _Value, dims: Any = (), keepdim: bool = False
) -> SSAValue:
    return _reduce(imp, node, nn.ReduceMaxOp, x, dims, keepdim)


@_handles("max")
def _max(
    imp: _Importer, node: torch.fx.Node, x: _Value, dim: Any = None, keepdim: bool = False
) -> _Value:
    if not isinstance(dim, int | type(None)):
        return _binary(imp, node, nn.MaxOp, x, dim)  # max.other: elementwise
    if dim is None:
        return _reduce(imp, node, nn.ReduceMaxOp, x, None, False)
    # max.dim returns (values, indices); only the values are computable with nn ops.
    values = imp.emit(
        nn.ReduceMaxOp(imp.value(x), [_norm_dim(dim, len(_shape_of(x)))], bool(keepdim))
    )
    return (values, None)


@_handles("var")
def _var(
    imp: _Importer, node: torch.fx.Node, x: _Value, dims: Any = None, *rest: Any, **kw: Any
) -> SSAValue:
    unbiased = rest[0] if rest and isinstance(rest[0], bool) else kw.get("unbiased", True)
    correction = kw.get("correction", 1 if unbiased else 0)
    keepdim = kw.get("keepdim", rest[1] if len(rest) > 1 else False)
    v = imp.value(x)
    shape = _shape_of(v)
    axes = list(range(len(shape))) if not dims else [_norm_dim(d, len(shape)) for d in dims]
    mean = imp.emit(nn.ReduceMeanOp(v, axes, True))
    diff = imp.emit(nn.SubOp(v, mean))
    sq = imp.emit(nn.MulOp(diff, diff))
    out = imp.emit(nn.ReduceMeanOp(sq, axes, bool(keepdim)))
    n = math.prod(shape[a] for a in axes)
    if correction and n > correction:
        out = imp.emit(nn.MulOp(out, imp.scalar(n / (n - correction), _elem_of(imp, out))))
    return out


def _pool_params(kernel: Any, stride: Any, padding: Any) -> tuple[list[int], list[int], list[int]]:
    k = _pair(kernel)
    s = _pair(stride, default=k) if stride is not None else k
    return k, s, _pair(padding)


def _check_pool(
    imp: _Importer, node: torch.fx.Node, v: SSAValue, k: list[int], s: list[int], p: list[int]
) -> TensorType:
    rtype = imp.meta_type(node)
    expected = nn.pool2d_shape(cast(TensorType, v.type), k, s, p)
    if tuple(rtype.get_shape()) != tuple(expected):
        raise _Unsupported("ceil_mode pooling that adds an output row or column")
    return rtype


@_handles("max_pool2d", "max_pool2d_with_indices")
def _max_pool(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> _Value:
    if any(d != 1 for d in _pair(dilation)):
        raise _Unsupported("dilated pooling")
    v = imp.value(x)
    k, s, p = _pool_params(kernel, stride, padding)
    out = imp.emit(nn.MaxPool2dOp(v, k, s, p, _check_pool(imp, node, v, k, s, p)))
    if _packet(node.target) == "max_pool2d_with_indices":
        return (out, None)
    return out


@_handles("avg_pool2d")
def _avg_pool(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    *rest: Any,
    **kw: Any,
) -> SSAValue:
    names = ["ceil_mode", "count_include_pad", "divisor_override"]
    options = {"count_include_pad": True, "divisor_override": None}
    options |= dict(zip(names, rest, strict=False)) | kw
    if options["divisor_override"] is not None:
        raise _Unsupported("avg_pool2d with divisor_override")
    v = imp.value(x)
    k, s, p = _pool_params(kernel, stride, padding)
    rtype = _check_pool(imp, node, v, k, s, p)
    out = imp.emit(nn.AvgPool2dOp(v, k, s, p, rtype))
    if options["count_include_pad"] and any(p):
        # nn.avg_pool2d divides by the cells inside the input; torch's default divides by the
        # whole window: scale each output by (cells inside / window cells), a constant map.
        h, w = _shape_of(v)[2:]
        ones = torch.ones(1, 1, h, w)
        inside = torch.nn.functional.avg_pool2d(ones, k, s, p, count_include_pad=True)
        name = f"{imp.path}.pad_fraction" if imp.path else "avg_pool2d.pad_fraction"
        out = imp.emit(nn.MulOp(out, imp.value(_Const(inside, name)), rtype))
    return out


@_handles("adaptive_avg_pool2d", "_adaptive_avg_pool2d")
def _adaptive_avg_pool(imp: _Importer, node: torch.fx.Node, x: _Value, size: Any) -> SSAValue:
    v = imp.value(x)
    shape = _shape_of(v)
    if len(shape) != 4:
        raise _Unsupported(f"input of rank {len(shape)} (NCHW expected)")
    oh, ow = _pair(size)
    h, w = shape[2], shape[3]
    if (oh, ow) == (1, 1):
        return imp.emit(nn.GlobalAvgPool2dOp(v, imp.meta_type(node)))
    if h % oh or w % ow:
        raise _Unsupported(f"adaptive pooling of {h}x{w} to {oh}x{ow} (uneven windows)")
    k = [h // oh, w // ow]
    return imp.emit(nn.AvgPool2dOp(v, k, k, [0, 0], imp.meta_type(node)))


# -- views and data movement -------------------------------------------------------------------


@_handles(*_IDENTITY)
def _identity(imp: _Importer, node: torch.fx.Node, x: _Value, *rest: Any, **kw: Any) -> _Value:
    return x


def _reshape_to(imp: _Importer, x: _Value, shape: Sequence[int]) -> _Value:
    shape = tuple(int(d) for d in shape)
    if isinstance(x, _ParamRef):
        return x.view(_View(shape))
    v = imp.value(x)
    # A reshape of a reshape reads the original: unsqueeze + squeeze leaves no op behind.
    while isinstance(v.owner, nn.ReshapeOp):
        v = v.owner.input
    if _shape_of(v) == shape:
        return v
    return imp.emit(nn.ReshapeOp(v, _retype(v, shape)))


@_handles(
    "view",
    "reshape",
    "_unsafe_view",
    "flatten",
    "unflatten",
    "unsqueeze",
    "squeeze",
    "view_as",
    "reshape_as",
)
def _view(imp: _Importer, node: torch.fx.Node, x: _Value, *rest: Any, **kw: Any) -> _Value:
    return _reshape_to(imp, x, imp.meta_type(node).get_shape())


def _permute_value(imp: _Importer, x: _Value, perm: Sequence[int]) -> _Value:
    rank = len(_shape_of(x))
    perm = tuple(_norm_dim(p, rank) for p in perm)
    if perm == tuple(range(rank)):
        return x
    shape = _shape_of(x)
    new_shape = tuple(shape[p] for p in perm)
    if isinstance(x, _ParamRef):
        return x.view(_View(new_shape, perm))
    v = imp.value(x)
    if isinstance(v.owner, nn.TransposeOp):
        # A transpose of a transpose is one permutation (or none: `.t().t()`).
        inner = tuple(v.owner.perm.get_values())
        v, perm = v.owner.input, tuple(inner[p] for p in perm)
        if perm == tuple(range(rank)):
            return v
    return imp.emit(nn.TransposeOp(v, list(perm)))


@_handles("permute")
def _permute(imp: _Importer, node: torch.fx.Node, x: _Value, perm: Sequence[int]) -> _Value:
    return _permute_value(imp, x, perm)


@_handles("transpose", "swapaxes", "swapdims")
def _transpose(imp: _Importer, node: torch.fx.Node, x: _Value, d0: int, d1: int) -> _Value:
    rank = len(_shape_of(x))
    perm = list(range(rank))
    a, b = _norm_dim(d0, rank), _norm_dim(d1, rank)
    perm[a], perm[b] = perm[b], perm[a]
    return _permute_value(imp, x, perm)


@_handles("t", "numpy_T")
def _t(imp: _Importer, node: torch.fx.Node, x: _Value) -> _Value:
    rank = len(_shape_of(x))
    return x if rank < 2 else _permute_value(imp, x, list(range(rank))[::-1])


_ELEMENTWISE_USERS = frozenset(_BINARY) | {"rsub", "where", "masked_fill", "add_", "mul_"}


@_handles("expand", "expand_as", "broadcast_to")
def _expand(imp: _Importer, node: torch.fx.Node, x: _Value, *rest: Any, **kw: Any) -> _Value:
    target = tuple(imp.meta_type(node).get_shape())
    shape = _shape_of(x)
    if shape == target:
        return x
    if len(shape) <= len(target):
        # Elementwise users broadcast by themselves: the expand needs no op.
        users = imp.users(node)
        if users and all(
            u.op == "call_function" and _packet(u.target) in _ELEMENTWISE_USERS for u in users
        ):
            return x
    return _broadcast_to(imp, imp.value(x), target)


@_handles(
    "_to_copy", "to", "type_as", "_autocast_to_reduced_precision", "_autocast_to_full_precision"
)
def _to(imp: _Importer, node: torch.fx.Node, x: _Value, *rest: Any, **kw: Any) -> _Value:
    rtype = imp.meta_type(node)
    if _shape_of(x) != tuple(rtype.get_shape()):
        raise _Unsupported("a cast that changes the shape")
    if _elem_of(imp, x) == rtype.get_element_type():
        return x  # the same IR type (float32 -> float16 with a bf16 activation dtype): folded
    return imp.emit(nn.CastOp(imp.value(x), rtype))


@_handles("cat", "concat", "concatenate")
def _cat(imp: _Importer, node: torch.fx.Node, tensors: Sequence[_Value], dim: int = 0) -> SSAValue:
    values = [imp.value(t) for t in tensors]
    rank = len(_shape_of(values[0]))
    rtype = imp.meta_type(node)
    values = [v for v in values if math.prod(_shape_of(v)) > 0] or values[:1]
    if len(values) == 1:
        return values[0]
    elem = rtype.get_element_type()
    values = [
        v
        if cast(TensorType, v.type).get_element_type() == elem
        else imp.emit(nn.CastOp(v, _retype_elem(rtype, _shape_of(v))))
        for v in values
    ]
    return imp.emit(nn.ConcatOp(values, _norm_dim(dim, rank), rtype))


def _slice_value(imp: _Importer, x: _Value, dim: int, start: int, size: int, step: int) -> _Value:
    shape = _shape_of(x)
    if start == 0 and size == shape[dim] and step == 1:
        return x
    starts = [0] * len(shape)
    sizes = list(shape)
    strides = [1] * len(shape)
    starts[dim], sizes[dim], strides[dim] = start, size, step
    return imp.emit(nn.SliceOp(imp.value(x), starts, sizes, strides))


@_handles("slice")
def _slice(
    imp: _Importer,
    node: torch.fx.Node,
    x: _Value,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> _Value:
    shape = _shape_of(x)
    dim = _norm_dim(dim, len(shape))
    size = imp.meta_type(node).get_shape()[dim]
    s = 0 if start is None else (start + shape[dim] if start < 0 else start)
    s = max(0, min(s, shape[dim]))
    if size == 0:
        raise _Unsupported("an empty slice")
    return _slice_value(imp, x, dim, s, size, step)


@_handles("narrow")
def _narrow(
    imp: _Importer, node: torch.fx.Node, x: _Value, dim: int, start: int, length: int
) -> _Value:
    shape = _shape_of(x)
    dim = _norm_dim(dim, len(shape))
    start = start + shape[dim] if start < 0 else start
    return _slice_value(imp, x, dim, start, length, 1)


def _select_value(imp: _Importer, x: _Value, dim: int, index: int) -> _Value:
    shape = _shape_of(x)
    dim = _norm_dim(dim, len(shape))
    index = index + shape[dim] if index < 0 else index
    part = _slice_value(imp, x, dim, index, 1, 1)
    return _reshape_to(imp, part, shape[:dim] + shape[dim + 1 :])


@_handles("select")
def _select(imp: _Importer, node: torch.fx.Node, x: _Value, dim: int, index: int) -> _Value:
    return _select_value(imp, x, dim, index)


def _split_sizes(total: int, size_or_sizes: int | Sequence[int]) -> list[int]:
    if isinstance(size_or_sizes, int):
        n = max(1, math.ceil(total / size_or_sizes))
        return [min(size_or_sizes, total - i * size_or_sizes) for i in range(n)]
    return list(size_or_sizes)


@_handles("split", "split_with_sizes", "split_copy", "split_with_sizes_copy")
def _split(
    imp: _Importer, node: torch.fx.Node, x: _Value, sizes: Any, dim: int = 0
) -> list[_Value]:
    shape = _shape_of(x)
    dim = _norm_dim(dim, len(shape))
    parts: list[_Value] = []
    start = 0
    for size in _split_sizes(shape[dim], sizes):
        parts.append(_slice_value(imp, x, dim, start, size, 1))
        start += size
    return parts


@_handles("chunk")
def _chunk(
    imp: _Importer, node: torch.fx.Node, x: _Value, chunks: int, dim: int = 0
) -> list[_Value]:
    total = _shape_of(x)[_norm_dim(dim, len(_shape_of(x)))]
    return _split(imp, node, x, math.ceil(total / chunks), dim)


@_handles("unbind")
def _unbind(imp: _Importer, node: torch.fx.Node, x: _Value, dim: int = 0) -> list[_Value]:
    shape = _shape_of(x)
    return [_select_value(imp, x, dim, i) for i in range(shape[_norm_dim(dim, len(shape))])]


@_handles("embedding")
def _embedding(
    imp: _Importer, node: torch.fx.Node, table: _Value, ids: _Value, *rest: Any, **kw: Any
) -> SSAValue:
    return imp.emit(nn.EmbeddingOp(imp.value(table), imp.value(ids), imp.meta_type(node)))


@_handles("index_select")
def _index_select(
    imp: _Importer, node: torch.fx.Node, x: _Value, dim: int, index: _Value
) -> SSAValue:
    data = imp.value(x)
    rank = len(_shape_of(data))
    return imp.emit(nn.GatherOp(data, imp.value(index), _norm_dim(dim, rank), imp.meta_type(node)))


@_handles("where")
def _where(
    imp: _Importer, node: torch.fx.Node, cond: _Value, a: _Value = None, b: _Value = None
) -> SSAValue:
    if a is None or b is None:
        raise _Unsupported("where(cond) with one argument (data-dependent shape)")
    return _select_by_mask(imp, node, cond, a, b)


@_handles("masked_fill")
def _masked_fill(
    imp: _Importer, node: torch.fx.Node, x: _Value, mask: _Value, value: _Value
) -> SSAValue:
    return _select_by_mask(imp, node, mask, value, x)


def _select_by_mask(
    imp: _Importer, node: torch.fx.Node, cond: _Value, a: _Value, b: _Value
) -> SSAValue:
    """where(c, a, b) = b + c * (a - b): nn has no select op, so the mask becomes arithmetic.

    An infinite fill would make that NaN where c is 0 (0 * inf), so where(c, +-inf, b) is
    b +- -log(1 - c) instead (log(1) = 0, log(0) = -inf), and where(c, a, +-inf) is a +- -log(c).
    """
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    infinite_a = isinstance(a, float) and math.isinf(a)
    if isinstance(cond, _Const) and infinite_a and not isinstance(b, _Const):
        # A constant mask filled with -inf (a causal mask): one additive tensor.
        fill = torch.zeros(cond.tensor.shape, dtype=torch.float32).masked_fill(
            cond.tensor, float(a)
        )
        return imp.emit(nn.AddOp(imp.value(b, elem), imp.value(_Const(fill, cond.name)), rtype))
    c = imp.value(cond)
    if cast(TensorType, c.type).get_element_type() != elem:
        c = imp.emit(nn.CastOp(c, _retype_elem(rtype, _shape_of(c))))
    infinite_b = isinstance(b, float) and math.isinf(b)
    if infinite_a != infinite_b:
        fill, other, where_fill = (a, b, imp.emit(nn.SubOp(imp.scalar(1, elem), c)))
        if infinite_b:
            fill, other, where_fill = (b, a, c)
        # log(where_fill) is 0 where `other` is chosen and -inf where the fill is.
        log = imp.emit(nn.LogOp(where_fill))
        step = nn.AddOp if fill < 0 else nn.SubOp
        return imp.emit(step(imp.value(other, elem), log, rtype))
    av, bv = imp.value(a, elem), imp.value(b, elem)
    diff = imp.emit(nn.SubOp(av, bv))
    return imp.emit(nn.AddOp(bv, imp.emit(nn.MulOp(c, diff)), rtype))


@_handles("full", "zeros", "ones", "scalar_tensor", "full_like", "zeros_like", "ones_like")
@_handles("new_full", "new_zeros", "new_ones", "empty", "empty_like", "new_empty")
def _splat(imp: _Importer, node: torch.fx.Node, *args: Any, **kw: Any) -> SSAValue:
    name = _packet(node.target)
    if name in ("full", "new_full", "full_like"):
        value = args[-1] if name == "full" else args[1]
        value = kw.get("fill_value", value)
    elif name == "scalar_tensor":
        value = args[0]
    elif "ones" in name:
        value = 1
    else:
        value = 0
    if not isinstance(value, bool | int | float):
        raise _Unsupported("a fill value that is not a constant")
    rtype = imp.meta_type(node)
    if not _is_float_elem(rtype.get_element_type()):
        value = int(value)
    return imp.emit(nn.ConstantOp(value, rtype), "cst")


@_handles("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu")
def _sdpa(
    imp: _Importer, node: torch.fx.Node, q: _Value, k: _Value, v: _Value, *args: Any, **kw: Any
) -> _Value:
    name = _packet(node.target)
    if name == "scaled_dot_product_attention":
        names = ["attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]
    else:
        names = ["dropout_p", "is_causal", "attn_mask", "scale"]
    p: dict[str, Any] = {"attn_mask": None, "is_causal": False, "scale": None, "enable_gqa": False}
    p |= dict(zip(names, args, strict=False)) | kw
    qv, kv, vv = imp.value(q), imp.value(k), imp.value(v)
    qs, ks = _shape_of(qv), _shape_of(kv)
    if len(qs) < 3 or qs[:-2] != ks[:-2]:
        raise _Unsupported("attention with broadcast or grouped key/value heads")
    scale = p["scale"] if p["scale"] is not None else 1.0 / math.sqrt(qs[-1])
    rank = len(qs)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = imp.emit(nn.TransposeOp(kv, perm))
    scores = imp.emit(nn.BatchMatmulOp(qv, kt))
    elem = cast(TensorType, scores.type).get_element_type()
    scores = imp.emit(nn.MulOp(scores, imp.scalar(float(scale), elem)))
    mask = p["attn_mask"]
    if p["is_causal"]:
        size_l, size_s = qs[-2], ks[-2]
        causal = torch.ones(size_l, size_s, dtype=torch.bool).tril().logical_not()
        mask = _Const(torch.zeros(size_l, size_s).masked_fill(causal, float("-inf")), "causal_mask")
    if mask is not None:
        if isinstance(mask, _Const) and mask.tensor.dtype == torch.bool:
            mask = _Const(
                torch.zeros(mask.tensor.shape).masked_fill(~mask.tensor, float("-inf")), mask.name
            )
        elif _elem_of(imp, mask) == i1:
            raise _Unsupported("a boolean attention mask computed from the inputs")
        scores = imp.emit(nn.AddOp(scores, imp.value(mask)))
    probs = imp.emit(nn.SoftmaxOp(scores, -1))
    out = imp.emit(nn.BatchMatmulOp(probs, vv))
    rtype_node = node.meta.get("val")
    if isinstance(rtype_node, tuple | list):
        return (out, None)
    return out


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _symbol(name: str) -> str:
    sym = re.sub(r"\W", "_", name)
    return sym if sym and not sym[0].isdigit() else f"m_{sym}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def import_module(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor] | torch.Tensor,
    *,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> ModuleOp:
    """Capture `module` with `torch.export` and build the equivalent `func.func` of `nn` ops.

    `weight_dtype` is the element type of every floating-point parameter (`i8`, `bf16`, ...;
    None or "keep" keeps torch's); `activation_dtype` that of every floating-point activation and
    buffer. `name` is the function's symbol (default: the module's class name in snake case).
    Raises ChiplexError if export fails or if any op cannot be mapped (listing all of them).
    """
    return import_with_constants(
        module,
        example_inputs,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        name=name,
    )[0]


def import_with_constants(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor] | torch.Tensor,
    *,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> tuple[ModuleOp, dict[str, torch.Tensor]]:
    """`import_module`, plus the data of every `nn.param` that stands for a folded constant
    (a mask built from buffers) rather than a state-dict entry, by param name."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    inputs = tuple(example_inputs)
    weight_type = parse_dtype(weight_dtype)
    act_type = parse_dtype(activation_dtype)
    what = type(module).__name__
    func_name = _symbol(name or _snake(type(module).__name__))
    was_training = module.training
    try:
        with torch.no_grad():
            ep = torch.export.export(module.eval(), inputs)
    except Exception as e:  # noqa: BLE001 - export raises many types; the user needs the message
        first = str(e).strip().splitlines()
        detail = first[0] if first else type(e).__name__
        raise ChiplexError(
            f"torch.export could not capture {what}: {type(e).__name__}: {detail}"
        ) from None
    finally:
        module.train(was_training)
    # Some ops have no mapping but decompose into ops that do (hardswish, ...): decompose just
    # those, since decomposing everything would also break up ops that map well (attention with a
    # boolean mask), and repeat while that helps. The last report lists what really blocks.
    table = None
    chosen: dict[Any, Any] = {}
    program = ep
    report = _Report()
    for _ in range(_DECOMPOSE_ROUNDS):
        importer = _Importer(program, weight_type, act_type, func_name)
        try:
            result = importer.run()
            break
        except _ImportFailed as failed:
            report = failed.report
            if table is None:
                table = torch.export.default_decompositions()
            new = {t: table[t] for t in importer.missing if t in table and t not in chosen}
            if not new:
                raise ChiplexError(failed.report.message(what)) from None
            chosen |= new
            try:
                with warnings.catch_warnings():
                    # torch 2.13 warns about its own pytree internals while decomposing.
                    warnings.simplefilter("ignore")
                    program = ep.run_decompositions(chosen)
            except Exception:  # noqa: BLE001 - keep the report if decomposition itself fails
                raise ChiplexError(failed.report.message(what)) from None
    else:
        raise ChiplexError(report.message(what))
    try:
        result.verify()
    except VerifyException as e:
        raise ChiplexError(
            f"imported IR of {what} does not verify (an importer bug): {e}"
        ) from None
    return result, importer.const_values


@dataclass(frozen=True)
class ImportStats:
    ops: int
    """Compute ops (everything but nn.param, nn.constant and func.return)."""
    params: int
    """Distinct nn.param ops."""
    param_elements: int
    param_bytes: int
    flops: int
    matrix_flops: int


def module_stats(module: ModuleOp) -> ImportStats:
    """Op count, parameter elements and bytes, flops of an imported module."""
    from chiplex.ir.types import numel, tensor_bytes

    ops = params = elements = nbytes = flops = matrix = 0
    for op in module.walk():
        if isinstance(op, nn.ParamOp):
            t = cast(TensorType, op.result.type)
            params += 1
            elements += numel(t)
            nbytes += tensor_bytes(t)
        elif isinstance(op, nn.NNOp) and not isinstance(op, nn.ConstantOp):
            ops += 1
            f = op.flops()
            flops += f
            if isinstance(op, nn.MatmulOp | nn.BatchMatmulOp | nn.Conv2dOp):
                matrix += f
    return ImportStats(ops, params, elements, nbytes, flops, matrix)


# -- specs: `pkg.module:factory`, zoo names, input shapes ----------------------------------------


def parse_input_spec(
    shapes: Sequence[str] | str, dtypes: Sequence[str] | str | None = None
) -> tuple[torch.Tensor, ...]:
    """Example inputs from `1x128`-style shapes and dtype names, one per input.

    Each entry may hold several comma-separated values; a single dtype applies to every input.
    Floating-point inputs are random normal, integer inputs zeros (valid ids for any table).
    """
    shape_list = [s for entry in _as_list(shapes) for s in entry.split(",") if s.strip()]
    dtype_list = [d for entry in _as_list(dtypes or []) for d in entry.split(",") if d.strip()]
    if not shape_list:
        raise ChiplexError("no input shape given (e.g. --input-shape 1x128)")
    if len(dtype_list) == 1:
        dtype_list *= len(shape_list)
    elif dtype_list and len(dtype_list) != len(shape_list):
        raise ChiplexError(
            f"{len(shape_list)} input shapes but {len(dtype_list)} dtypes: give one dtype per input or one for all"
        )
    inputs: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(0)
    for i, text in enumerate(shape_list):
        text = text.strip()
        try:
            dims = [int(d) for d in text.lower().split("x")] if text not in ("", "scalar") else []
        except ValueError:
            raise ChiplexError(
                f"bad input shape '{text}': expected sizes joined by 'x', like 1x128"
            ) from None
        if any(d < 0 for d in dims):
            raise ChiplexError(f"bad input shape '{text}': sizes must be >= 0")
        name = dtype_list[i].strip().lower() if dtype_list else "float32"
        if name not in _TORCH_DTYPES:
            raise ChiplexError(
                f"unknown input dtype '{name}': expected one of float32, bf16, float16, int64, int32, bool, ..."
            )
        dtype = _TORCH_DTYPES[name]
        if dtype.is_floating_point:
            inputs.append(torch.randn(dims, generator=gen).to(dtype))
        else:
            inputs.append(torch.zeros(dims, dtype=dtype))
    return tuple(inputs)


def _as_list(x: Sequence[str] | str) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


_SPEC = re.compile(r"^(?P<module>[^:()]+?)(?::(?P<attr>[\w.]+))?(?:\((?P<args>.*)\))?$", re.DOTALL)


def _parse_call_args(text: str, spec: str) -> tuple[list[Any], dict[str, Any]]:
    """Literal arguments of `factory(12, hidden=64)` in a spec."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        assert isinstance(call, ast.Call)
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except (SyntaxError, ValueError, AssertionError):
        raise ChiplexError(
            f"bad model spec '{spec}': factory arguments must be Python literals, like bert(2, hidden=64)"
        ) from None
    return args, kwargs


def _resolve_factory(spec: str) -> tuple[Callable[..., Any], list[Any], dict[str, Any], str]:
    spec = spec.strip()
    m = _SPEC.match(spec)
    if m is None:
        raise ChiplexError(f"bad model spec '{spec}': expected pkg.module:factory or a zoo name")
    mod_name, attr, arg_text = m.group("module"), m.group("attr"), m.group("args")
    args, kwargs = _parse_call_args(arg_text, spec) if arg_text is not None else ([], {})
    if attr is None:
        # A bare name is a zoo model: `bert_base` or `bert(2, hidden=64)`.
        from chiplex import models

        if mod_name in models.ZOO and arg_text is None:
            return models.ZOO[mod_name].factory, [], {}, mod_name
        factory = getattr(models, mod_name, None)
        if not callable(factory) or mod_name.startswith("_"):
            raise ChiplexError(
                f"unknown model '{mod_name}': expected pkg.module:factory or one of the zoo "
                f"models {', '.join(models.ZOO)}"
            )
        return factory, args, kwargs, mod_name
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise ChiplexError(f"bad model spec '{spec}': no such file {path}")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ChiplexError(f"bad model spec '{spec}': cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules.setdefault(path.stem, module)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - user code: report, do not crash
            raise ChiplexError(f"error while loading {path}: {type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            raise ChiplexError(f"bad model spec '{spec}': cannot import {mod_name}: {e}") from None
        except Exception as e:  # noqa: BLE001
            raise ChiplexError(
                f"error while importing {mod_name}: {type(e).__name__}: {e}"
            ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ChiplexError(f"bad model spec '{spec}': {mod_name} has no attribute '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ChiplexError(f"bad model spec '{spec}': {attr} is not callable")
    return obj, args, kwargs, attr.split(".")[-1]


def build_model(spec: str) -> tuple[torch.nn.Module, str]:
    """The module a spec's factory returns, and the function name it gets (the factory's)."""
    factory, args, kwargs, name = _resolve_factory(spec)
    try:
        module = factory(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise ChiplexError(f"model factory '{spec}' failed: {type(e).__name__}: {e}") from None
    if not isinstance(module, torch.nn.Module):
        raise ChiplexError(
            f"model factory '{spec}' returned {type(module).__name__}, not a torch.nn.Module"
        )
    return module, _symbol(name)


def load_factory(spec: str) -> torch.nn.Module:
    """Call the factory a spec names and return its module.

    Specs: `pkg.module:factory`, `path/to/file.py:factory`, a zoo name (`bert_base`), and any of
    these with literal arguments: `chiplex.models:bert(2, hidden=64)`.
    """
    return build_model(spec)[0]


def load_model_spec(
    spec: str,
    input_shapes: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> ModuleOp:
    """Build the module a spec names and import it (`chiplex import-torch` and `compile SPEC`).

    Without `input_shapes` the module must define `example_inputs()` (every zoo model does).
    The function is named `name`, by default after the factory (`bert_base`).
    """
    parse_dtype(weight_dtype)
    parse_dtype(activation_dtype)
    module, default_name = build_model(spec)
    if input_shapes:
        inputs = parse_input_spec(input_shapes, dtypes)
    elif dtypes:
        raise ChiplexError("--dtype needs --input-shape (one dtype per input shape)")
    else:
        make = getattr(module, "example_inputs", None)
        if not callable(make):
            raise ChiplexError(
                f"{spec}: {type(module).__name__} has no example_inputs(); give the input shapes "
                f"(--input-shape 1x128 --dtype int64)"
            )
        inputs = tuple(make())
    return import_module(
        module,
        inputs,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        name=name or default_name,
    )
