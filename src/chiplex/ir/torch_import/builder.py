"""The builder: walks an exported FX graph and emits `nn` ops through the xDSL Python API."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.fx
from torch.export.graph_signature import OutputKind
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
    f64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from chiplex.ir import nn
from chiplex.ir.torch_import.registry import (
    ATEN_RULES,
    CHECKS,
    FACTORIES,
    FOLDABLE,
    UNMAPPABLE,
    packet,
)
from chiplex.ir.torch_import.values import (
    POISON,
    Const,
    ParamRef,
    Poison,
    Unsupported,
    Value,
    View,
    fits_integer,
    is_float_elem,
    rounds,
    torch_elem,
)

# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------

_VALID_NAME = re.compile(r"[A-Za-z_$.-][\w$.-]*")
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH_DIR = str(Path(torch.__file__).parent)


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
class Report:
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


WEIGHT_PREPROCESSING_RULES = ("elementwise", "reduction", "normalization")
"""Rule families whose ops on parameters alone are folded at import (weight normalisation; BiT's
weight standardisation, a batch norm of the weight with its own statistics)."""
FOLDED_FROM_ATTR = "folded_from"
HALF_DTYPES = (torch.float16, torch.bfloat16)
"""On an `nn.param` computed at import from parameters: their names, comma-separated."""


class Importer:
    def __init__(
        self,
        ep: torch.export.ExportedProgram,
        weight_type: Attribute | None,
        act_type: Attribute | None,
        func_name: str,
        prefix: str = "",
    ) -> None:
        self.ep = ep
        self.prefix = prefix
        """Stripped from parameter names and module paths (the wrapper `capture` may add)."""
        self.weight_type = weight_type
        self.act_type = act_type
        self.func_name = func_name
        self.env: dict[torch.fx.Node, Value] = {}
        self.ops: list[Operation] = []
        self.report = Report()
        self.hints: dict[str, int] = {}
        self.path = ""
        self.node: torch.fx.Node | None = None
        # Materialised parameters: name -> (value, views it was stored with).
        self.params: dict[str, tuple[SSAValue, tuple[View, ...]]] = {}
        self.param_views: dict[tuple[str, tuple[View, ...]], SSAValue] = {}
        # Keyed by the object (identity), which keeps it alive: an `id()` key could be reused by a
        # later temporary Const and hand back the wrong tensor.
        self.consts: dict[Const, SSAValue] = {}
        self.const_names: dict[str, list[tuple[torch.Tensor, SSAValue]]] = {}
        self.const_values: dict[str, torch.Tensor] = {}
        self.missing: set[object] = set()
        """Targets without a handler: decomposing them may help."""
        self.scalars: dict[tuple[float | int | bool, Attribute], SSAValue] = {}
        self.users_cache: dict[torch.fx.Node, list[torch.fx.Node]] = {}
        self.notes: list[str] = []
        """What the import left out on purpose (non-tensor outputs), for the user."""

    def strip(self, path: str) -> str:
        """A module path of the user's module (without the wrapper's prefix)."""
        if self.prefix and path == self.prefix.removesuffix("."):
            return ""
        return path.removeprefix(self.prefix)

    # -- types -----------------------------------------------------------------------------

    def elem(self, dtype: torch.dtype, *, weight: bool = False) -> Attribute:
        """The IR element type of a torch dtype: floats take the weight or activation dtype."""
        if dtype.is_floating_point:
            target = self.weight_type if weight else self.act_type
            if target is not None:
                return target
        return torch_elem(dtype)

    def meta_type(self, node: torch.fx.Node) -> TensorType:
        val = node.meta.get("val")
        if isinstance(val, tuple | list) and val:
            val = val[0]  # multi-result ops (max_pool2d_with_indices): the first is the value
        if not isinstance(val, torch.Tensor):
            raise Unsupported("result without tensor metadata")
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

    def exact_elem(self, value: float | int, elem: Attribute) -> Attribute:
        """`elem`, or a type that holds `value` exactly when `elem` would change it: a splat costs
        nothing, so it keeps its value (constants in the IR compute what torch computes)."""
        if not is_float_elem(elem) and not fits_integer(value, elem):
            # A fraction (SELU's alpha, a clamp at 0.5) or a value out of the type's range (a
            # -1000 fill) next to integer activations (--activation-dtype i8).
            act = self.act_type
            elem = act if act is not None and is_float_elem(act) else f32
        if is_float_elem(elem) and math.isfinite(value) and rounds(value, elem):
            # The activation dtype would round the value (0.1 in bf16 is 0.10009765625, 1e7
            # overflows f16) and with it what the IR computes; f64 beyond f32's range (a float64
            # model's finfo.min fill).
            elem = f64 if rounds(value, f32) and not rounds(value, f64) else f32
        return elem

    def scalar(self, value: float | int | bool, elem: Attribute) -> SSAValue:
        """A rank-0 splat constant, shared by every use of the same value and type."""
        if isinstance(value, bool):
            value = int(value)
        elem = self.exact_elem(value, elem)
        key = (value, elem)
        if key not in self.scalars:
            op = nn.ConstantOp(value, TensorType(elem, []))
            self.scalars[key] = self.emit(op, "cst")
        return self.scalars[key]

    def materialize_param(self, ref: ParamRef) -> SSAValue:
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
                value = self.apply_view(value, View(shapes[i], _inverse(stored[i].perm)))
            for v in ref.views:
                value = self.apply_view(value, v)
        self.param_views[key] = value
        return value

    def apply_view(self, value: SSAValue, v: View) -> SSAValue:
        if v.perm is not None:
            return self.emit(nn.TransposeOp(value, list(v.perm)))
        return self.emit(nn.ReshapeOp(value, retype(value, v.shape)))

    def materialize_const(self, c: Const) -> SSAValue:
        if c in self.consts:
            return self.consts[c]
        t = c.tensor
        elem = self.elem(c.dtype, weight=bool(c.from_params))
        ttype = TensorType(elem, list(t.shape))
        flat = t.reshape(-1)
        if not c.from_params and flat.numel() > 0 and bool((flat == flat[0]).all()):
            # (A batch norm's folded scale of one channel: exactly, not in the activation dtype.)
            first = flat[0].item()
            ttype = TensorType(self.exact_elem(first, elem), list(t.shape))
            value = self.emit(nn.ConstantOp(first, ttype), "cst")
        else:
            # Equal tensors derived from the same buffer (each layer slicing one mask) share a param.
            same = self.const_names.setdefault(c.name, [])
            for other, stored in same:
                if other.shape == t.shape and other.dtype == t.dtype and torch.equal(other, t):
                    self.consts[c] = stored
                    return stored
            name = c.name if not same else f"{c.name}.{len(same) + 1}"
            param = nn.ParamOp(name, ttype)
            if c.from_params:
                # Whoever loads real weights computes it as the import did (the data is returned
                # with the buffers by `import_with_constants`).
                param.attributes[FOLDED_FROM_ATTR] = StringAttr(",".join(c.from_params))
            value = self.emit(param, name)
            same.append((t, value))
            self.const_values[name] = t
        self.consts[c] = value
        return value

    def value(self, v: Value, elem: Attribute | None = None) -> SSAValue:
        """An SSA value for an operand; Python scalars become rank-0 constants of type `elem`."""
        if isinstance(v, SSAValue):
            return v
        if isinstance(v, ParamRef):
            return self.materialize_param(v)
        if isinstance(v, Const):
            return self.materialize_const(v)
        if isinstance(v, bool | int | float):
            return self.scalar(v, elem if elem is not None else (self.act_type or f32))
        raise Unsupported(f"operand of kind {type(v).__name__}")

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
                name = param_of[node.name].removeprefix(self.prefix)
                self.env[node] = ParamRef(name, tuple(int(d) for d in val.shape), val.dtype)
            elif node.name in buffer_of or node.name in const_of:
                target = buffer_of.get(node.name) or const_of[node.name]
                tensor = self.ep.state_dict.get(target)
                if tensor is None:
                    tensor = self.ep.constants[target]
                if isinstance(tensor, torch.nn.Parameter):
                    tensor = tensor.data
                name = target.removeprefix(self.prefix)
                self.env[node] = Const(cast(torch.Tensor, tensor).detach(), name)
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
                self.path = self.strip(_module_path(node))
                self.import_node(node)
            elif node.op == "output":
                self.node = node
                self.path = ""
                specs = self.ep.graph_signature.output_specs
                for index, r in enumerate(flatten(node.args[0])):
                    if index < len(specs) and specs[index].kind != OutputKind.USER_OUTPUT:
                        # A parameter or buffer that forward updates in place (RWKV rescales its
                        # weights on the first call in eval mode): export returns the new value
                        # as an extra output; the IR computes the user's outputs only.
                        self.notes.append(
                            f"forward updates {specs[index].target} in place: not an output"
                        )
                        continue
                    val = self.env.get(r, POISON) if isinstance(r, torch.fx.Node) else r
                    if isinstance(val, Poison):
                        continue
                    if not isinstance(val, SSAValue | ParamRef | Const):
                        # A cache object, a flag, None: nothing a chip computes or sends back.
                        self.notes.append(
                            f"output #{index} is not a tensor ({type(val).__name__}): dropped"
                        )
                        continue
                    try:
                        outputs.append(self.value(val))
                    except Unsupported as e:
                        self.report.add(f"output ({e})", node)
            elif node.op not in ("placeholder",):
                self.report.add(f"{node.op} {node.target}", node)
        if self.report.entries:
            raise ImportFailed(self.report)
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
        args = torch.fx.node.map_arg(node.args, lambda n: self.env.get(n, POISON))
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: self.env.get(n, POISON))
        flat = list(flatten((args, kwargs)))
        name = packet(node.target)
        if any(isinstance(a, Poison) for a in flat):
            # Downstream of a failure: still list an op that has no mapping at all, so the
            # report names every unsupported op, not only the first of a chain.
            if node.target is not operator.getitem and name not in ATEN_RULES | FOLDABLE:
                self.no_rule(node, name)
            self.env[node] = POISON
            return
        if node.target is operator.getitem:
            self.env[node] = self.getitem(args[0], args[1], node)
            return
        if name in CHECKS:
            self.env[node] = None
            return
        # Constant folding: nothing here depends on the inputs or the weights.
        tensors = [a for a in flat if isinstance(a, Const | ParamRef | SSAValue)]
        if all(isinstance(a, Const) for a in tensors) and (tensors or name in FACTORIES):
            try:
                self.env[node] = self.fold(node, args, kwargs)
                return
            except Exception:  # noqa: BLE001 - fall back to importing the op normally
                pass
        handler = ATEN_RULES.get(name)
        if (
            handler is not None
            and handler.__module__.rsplit(".", 1)[-1] in WEIGHT_PREPROCESSING_RULES
            and any(isinstance(a, ParamRef) for a in tensors)
            and all(isinstance(a, Const | ParamRef) for a in tensors)
        ):
            # Arithmetic on weights alone (weight normalisation: g * v / ||v||) is the same for
            # every input: computed once here, stored as the weight the model really uses.
            try:
                self.env[node] = self.fold(node, self.param_data(args), self.param_data(kwargs))
                return
            except Exception:  # noqa: BLE001 - fall back to importing the op normally
                pass
        if handler is None:
            self.no_rule(node, name)
            self.env[node] = POISON
            return
        try:
            self.env[node] = handler(self, node, *args, **kwargs)
        except Unsupported as e:
            self.report.add(f"{node.target} ({e})", node)
            self.env[node] = POISON
        except VerifyException as e:
            self.report.add(f"{node.target} ({e})", node)
            self.env[node] = POISON

    def no_rule(self, node: torch.fx.Node, name: str) -> None:
        """Report an op without a rule: with the reason when no nn ops can compute it, else as
        missing (decomposing it may help)."""
        if name in UNMAPPABLE:
            self.report.add(f"{node.target} ({UNMAPPABLE[name]})", node)
            return
        self.report.add(str(node.target), node)
        self.missing.add(node.target)

    def param_data(self, x: Any) -> Any:
        """`x` with each ParamRef replaced by a Const of its data (views applied)."""
        if isinstance(x, ParamRef):
            t = self.ep.state_dict[self.prefix + x.name].detach()
            for v in x.views:
                t = t.permute(v.perm) if v.perm is not None else t.reshape(v.shape)
            return Const(t, x.name, (x.name,))
        if isinstance(x, list | tuple):
            return type(x)(self.param_data(y) for y in x)
        if isinstance(x, dict):
            return {k: self.param_data(y) for k, y in x.items()}
        return x

    def fold(self, node: torch.fx.Node, args: Any, kwargs: Any) -> Value:
        consts = [a for a in flatten((args, kwargs)) if isinstance(a, Const)]
        name = consts[0].name if consts else f"const.{node.name}"
        sources = tuple(dict.fromkeys(p for c in consts for p in c.from_params))
        if sources:
            name = f"{sources[0]}.folded"

        def unwrap(a: Any) -> Any:
            if isinstance(a, Const):
                # Half-precision data is folded in float32, as the IR computes (weight
                # normalisation of a bf16 model would otherwise round where the IR does not).
                return a.tensor.float() if a.tensor.dtype in HALF_DTYPES else a.tensor
            if isinstance(a, list | tuple):
                return type(a)(unwrap(x) for x in a)
            if isinstance(a, dict):
                return {k: unwrap(x) for k, x in a.items()}
            return a

        with torch.no_grad():
            out = cast(Callable[..., Any], node.target)(*unwrap(args), **unwrap(kwargs))

        def wrap(o: Any, meta: Any) -> Any:
            if isinstance(o, torch.Tensor):
                declared = meta.dtype if isinstance(meta, torch.Tensor) else None
                return Const(o, name, sources, declared if declared != o.dtype else None)
            if isinstance(o, list | tuple):
                metas = meta if isinstance(meta, list | tuple) else [None] * len(o)
                return type(o)(wrap(x, m) for x, m in zip(o, metas, strict=False))
            return o

        return wrap(out, node.meta.get("val"))

    def getitem(self, container: Value, index: Any, node: torch.fx.Node) -> Value:
        item = container[index]
        if item is None and not node.users:
            return None  # export keeps unused results of multi-result ops (pooling's indices)
        if item is None:
            producer = cast(torch.fx.Node, node.args[0]).target
            self.report.add(f"{producer} (result #{index} is not computed by nn ops)", node)
            return POISON
        return item

    def users(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        if node not in self.users_cache:
            self.users_cache[node] = list(node.users)
        return self.users_cache[node]


class ImportFailed(Exception):
    def __init__(self, report: Report) -> None:
        super().__init__("unsupported ops")
        self.report = report


def flatten(x: Any) -> Iterator[Any]:
    if isinstance(x, list | tuple):
        for y in x:
            yield from flatten(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from flatten(y)
    else:
        yield x


def _describe_views(views: Sequence[View]) -> str:
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


def retype(value: SSAValue, shape: Sequence[int]) -> TensorType:
    return TensorType(cast(TensorType, value.type).get_element_type(), list(shape))


def retype_elem(t: TensorType, shape: Sequence[int]) -> TensorType:
    return TensorType(t.get_element_type(), list(shape))


def shape_of(v: Value) -> tuple[int, ...]:
    if isinstance(v, SSAValue):
        return tuple(cast(TensorType, v.type).get_shape())
    if isinstance(v, ParamRef):
        return v.shape
    if isinstance(v, Const):
        return tuple(v.tensor.shape)
    if isinstance(v, bool | int | float):
        return ()
    raise Unsupported(f"operand of kind {type(v).__name__}")


def elem_of(imp: Importer, v: Value) -> Attribute:
    if isinstance(v, SSAValue):
        return cast(TensorType, v.type).get_element_type()
    if isinstance(v, ParamRef):
        return imp.elem(v.dtype, weight=True)
    if isinstance(v, Const):
        return imp.elem(v.dtype)
    raise Unsupported(f"operand of kind {type(v).__name__}")


def norm_dim(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def pair(v: int | Sequence[int], default: Sequence[int] | None = None) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    vals = list(v)
    if not vals and default is not None:
        return list(default)
    if len(vals) == 1:
        return vals * 2
    if len(vals) != 2:
        raise Unsupported(f"{len(vals)}-D window (only 2-D is supported)")
    return vals


def broadcast_to(imp: Importer, v: SSAValue, shape: Sequence[int]) -> SSAValue:
    """Materialise a broadcast (nn has no broadcast op): add a zero splat of the target shape."""
    if tuple(shape_of(v)) == tuple(shape):
        return v
    elem = cast(TensorType, v.type).get_element_type()
    zero = imp.emit(nn.ConstantOp(0, TensorType(elem, list(shape))), "cst")
    return imp.emit(nn.AddOp(v, zero, TensorType(elem, list(shape))), None)
