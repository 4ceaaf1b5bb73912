"""Load IR text into a verified module, turning every failure into a located ChiplexError.

xDSL parse errors carry a position, verifier errors do not: `_LocatingParser` remembers where
each op started so a failing op can be reported at `file:line:col` like a syntax error.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import cast

from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin, ModuleOp, TensorType, UnrankedTensorType
from xdsl.dialects.func import Func, FuncOp
from xdsl.ir import Operation, OpResult
from xdsl.irdl import VarOperandDef
from xdsl.parser import Parser
from xdsl.traits import IsTerminator
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Input, Span

from chiplex.errors import ChiplexError
from chiplex.ir import locations
from chiplex.ir.mcm import CHIP_ATTR_NAME, MCM, ChipAttr
from chiplex.ir.nn import NN, SHARD_OF_ATTR, ParamOp
from chiplex.ir.types import check_static


def make_context() -> Context:
    """A context with builtin, func, arith, nn and mcm; unknown ops are errors."""
    ctx = Context(allow_unregistered=False)
    for dialect in (Builtin, Func, Arith, NN, MCM):
        ctx.load_dialect(dialect)
    return ctx


_STRING_LITERAL = re.compile(r'"(?:[^"\\\n\v\f]++|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+"')
"""MLIR's string literal (escapes \\n \\t \\\\ \\" and two hex digits), without backtracking."""


class _LocatingParser(Parser):
    """A Parser that records the source offset of every op it builds."""

    def __init__(self, ctx: Context, text: str, name: str) -> None:
        super().__init__(ctx, text, name)
        # xDSL 0.74's string-literal regex backtracks exponentially on a literal that is never closed
        # (minutes for one line): the same language with possessive quantifiers fails in linear time.
        self.lexer._unescaped_characters_regex = _STRING_LITERAL  # type: ignore[attr-defined]
        self.op_offsets: dict[int, int] = {}
        # Offsets of the ops being parsed, innermost last: locates non-ParseError failures.
        self.open_ops: list[int] = []
        # The op type of each open op and whether it is written in custom form (None until known).
        self.open_op_types: list[tuple[type[Operation], bool] | None] = []
        self._name_span: Span | None = None
        # The op parsed last and its start: text left on its line is blamed on it.
        self.last_op: tuple[Operation, int] | None = None

    @property
    def input(self) -> Input:
        return self.lexer.input

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        self.open_ops.append(start)
        self.open_op_types.append(None)
        op = super().parse_operation()
        self.open_ops.pop()
        self.last_op = (op, start)
        self.open_op_types.pop()
        self.op_offsets[id(op)] = start
        return op

    def _parse_op_result_list(self):  # type: ignore[override]
        results = super()._parse_op_result_list()
        # The next token is the op name (bare or quoted): remember it for "unknown operation".
        self._name_span = self._current_token.span
        return results

    def _get_op_by_name(self, name: str) -> type[Operation]:
        if op_type := self.ctx.get_optional_op(
            name, dialect_stack=self._parser_state.dialect_stack
        ):
            custom = self._name_span is not None and not self._name_span.text.startswith('"')
            self.open_op_types[-1] = (op_type, custom)
            return op_type
        self.raise_error(f"unknown operation '{name}'", self._name_span)


def _format(source: Input, start: int, end: int, msg: str, note: str = "") -> str:
    """`file:line:col: error: msg` followed by the source line, a caret marker and `note`."""
    span = Span(start, max(start, end), source)
    loc = span.get_location()
    line_start = source.get_start_of_line(start)
    line = source.content[line_start : source.get_end_of_line(start)]
    width = max(1, min(end, line_start + len(line)) - start)
    caret = " " * (start - line_start) + "^" * width
    first, *rest = msg.strip().splitlines() or [""]
    tail = "".join(f"\n{r}" for r in rest)
    note = f"\nnote: {note}" if note else ""
    return f"{loc.file}:{loc.line}:{loc.col}: error: {first}{tail}\n{line}\n{caret}{note}"


def _verify_located(module: ModuleOp, parser: _LocatingParser) -> None:
    # Ops are checked one at a time in source order so the first bad op (textually) is the
    # one reported, with the position recorded while parsing.
    source = parser.input
    for op in module.walk():
        if isinstance(op, FuncOp):
            _check_return(op, source, parser)
        chip = op.attributes.get(CHIP_ATTR_NAME)
        if chip is not None and not isinstance(chip, ChipAttr):
            # Anything else would read as "unplaced" and be silently replaced by the placer.
            start = parser.op_offsets.get(id(op), 0)
            msg = f"{op.name}: {CHIP_ATTR_NAME} must be a #mcm.chip<N> (N >= 0), got {chip}"
            raise ChiplexError(_format(source, start, start + 1, msg))
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as e:
            msg = str(e)
            if not msg.startswith(op.name):
                msg = f"{op.name}: {msg}"
            start = parser.op_offsets.get(id(op), 0)
            raise ChiplexError(_format(source, start, start + 1, msg)) from None
    for op in module.walk():
        if isinstance(op, FuncOp):
            _check_signature(op, source, parser.op_offsets.get(id(op), 0))
    _check_param_shapes(module, parser)
    try:
        # Region-level rules (terminators, block structure) are not covered by per-op checks.
        module.verify()
    except VerifyException as e:
        raise ChiplexError(_format(source, 0, 1, str(e))) from None


def _check_return(func: FuncOp, source: Input, parser: _LocatingParser) -> None:
    """A body without its `func.return` (xDSL says the last op "terminates block in single-block
    region but is not a terminator"): say what is missing, at the op it should follow."""
    if not func.body.blocks:
        return  # a declaration (no body) has nothing to return
    ops = list(func.body.blocks.first.ops)
    name = f"func.func @{func.sym_name.data}"
    if not ops:
        start = parser.op_offsets.get(id(func), 0)
        msg = f"{name}: empty body: it must end with `func.return` of the function's results"
        raise ChiplexError(_format(source, start, start + 1, msg))
    if not any(op.has_trait(IsTerminator) for op in ops):  # an early return: xDSL says so
        start = parser.op_offsets.get(id(ops[-1]), 0)
        msg = (
            f"{name}: missing func.return: the body ends with this {ops[-1].name}; a function "
            "ends with `func.return %value, ... : type, ...`"
        )
        raise ChiplexError(_format(source, start, start + 1, msg))


def _position(parser: _LocatingParser, op: Operation) -> str:
    loc = Span(start := parser.op_offsets.get(id(op), 0), start + 1, parser.input).get_location()
    return f"{loc.file}:{loc.line}:{loc.col}"


def _check_param_shapes(module: ModuleOp, parser: _LocatingParser) -> None:
    """Two `nn.param "w"` read the same data (the interpreter and the importer key parameters by
    name), so without a view or shard between them they must declare one shape: a copied line
    whose name was not changed would otherwise surface only when the program runs."""
    first: dict[str, ParamOp] = {}
    for op in module.walk():
        if not isinstance(op, ParamOp) or "torch_view" in op.attributes:
            continue
        if SHARD_OF_ATTR in op.attributes:
            continue
        name = op.param_name.data
        earlier = first.setdefault(name, op)
        shape = cast(TensorType, op.result.type).get_shape()
        earlier_type = cast(TensorType, earlier.result.type)
        if shape != earlier_type.get_shape():
            start = parser.op_offsets.get(id(op), 0)
            msg = (
                f'nn.param "{name}": declared {op.result.type} here but {earlier_type} at '
                f"{_position(parser, earlier)}; params of one name are one tensor "
                "(rename one of them)"
            )
            raise ChiplexError(_format(parser.input, start, start + 1, msg))


def _check_signature(func: FuncOp, source: Input, start: int) -> None:
    """A function's tensors follow the nn rules too (static, non-empty, known element size):
    an argument only returned, or a result only fed by mcm ops, is never checked by an nn op."""
    inputs, outputs = func.function_type.inputs.data, func.function_type.outputs.data
    args = func.body.blocks.first.args if func.body.blocks else ()
    named = [
        (f"argument %{a.name_hint}" if a.name_hint else f"argument #{i}", t)
        for i, (a, t) in enumerate(zip(args, inputs, strict=False))
    ] + [(f"result #{i}", t) for i, t in enumerate(outputs)]
    for what, t in named:
        if isinstance(t, TensorType | UnrankedTensorType):
            try:
                check_static(t, f"func.func @{func.sym_name.data}: {what}")
            except VerifyException as e:
                at, end = start, start + 1
                brace = source.content.find("{", start)
                header = source.content[start : brace if brace >= 0 else None]
                if what.startswith("argument %") and (
                    m := re.search(rf"{re.escape(what.split()[1])}(?![\w$.-])", header)
                ):
                    at, end = start + m.start(), start + m.end()
                raise ChiplexError(_format(source, at, end, str(e))) from None


_CLEARER = {
    "End of file reached before closing string literal.": (
        'unterminated string literal: no closing " on this line (or an escape other than '
        '\\n \\t \\\\ \\" \\XX)'
    ),
    "Could not parse entire input!": "unexpected text after the end of the module (a stray token?)",
}
"""xDSL parse messages that read better for a user of chiplex."""


_FORMAT_TOKEN = re.compile(r"`([^`]*)`|type\(\$(\w+)\)|\$(\w+)\^?|attr-dict|(\()|(\)\?)")

_HAND_WRITTEN_FORMS = {"nn.constant": "nn.constant <number | true | false> : <result type>"}
"""Forms of the ops that parse themselves instead of declaring an assembly_format."""


def custom_form(op_type: type[Operation]) -> str | None:
    """How `op_type` is written in custom form, read off its assembly format: operands as `%name`,
    properties as `<name>`, types as `<name type>`, optional groups in `[...]`; None if unknown.
    E.g. `nn.softmax %input axis = <axis> : <input type>`."""
    if op_type.name in _HAND_WRITTEN_FORMS:
        return _HAND_WRITTEN_FORMS[op_type.name]
    fmt = getattr(op_type, "assembly_format", None)
    if not isinstance(fmt, str) or not hasattr(op_type, "get_irdl_definition"):
        return None
    definition = op_type.get_irdl_definition()
    operands = {name for name, _ in definition.operands}
    variadic = {name for name, d in definition.operands if isinstance(d, VarOperandDef)}
    words: list[str] = []
    for m in _FORMAT_TOKEN.finditer(fmt):
        literal, typed, variable, group_open, group_close = m.groups()
        if literal is not None:
            words.append(literal)
        elif typed is not None:
            words.append(f"<{typed} types>" if typed in variadic else f"<{typed} type>")
        elif variable in variadic:
            words.append(f"%{variable}...")
        elif variable in operands:
            words.append(f"%{variable}")
        elif variable is not None and words[-1:] != [variable]:
            # A flag (`keepdims $keepdims^`) is its keyword alone.
            words.append(f"<{variable}>")
        elif group_open:
            words.append("[")
        elif group_close:
            words.append("]")
    text = " ".join([op_type.name, *words])
    return re.sub(r"\[ ", "[", re.sub(r" ([,\]])", r"\1", text))


def _explain_custom_op_error(
    parser: _LocatingParser, text: str, start: int, end: int, msg: str
) -> tuple[int, int, str, str] | None:
    """A syntax error inside a custom-form nn or mcm op, made clearer: the located span, the
    message and a note saying how the op is written; None for errors elsewhere."""
    if not parser.open_op_types or parser.open_op_types[-1] is None:
        return None
    op_type, custom = parser.open_op_types[-1]
    if not custom or op_type.dialect_name() not in ("nn", "mcm") or not parser.open_ops:
        return None
    form = custom_form(op_type)
    if form is None:
        return None
    op_start = parser.open_ops[-1]
    note = f"{op_type.name} is written: {form}"
    # MLIR's generic form (and some dialects' custom forms) write `: (T, T) -> T`.
    function_type = re.compile(r":\s*(\()").search(text, op_start, max(end, start + 1))
    if function_type is not None and "\n" not in text[op_start : function_type.start()]:
        at = function_type.start(1)
        msg = (
            f"{op_type.name}: expected the types without parentheses, not a function type "
            f'`(...) -> ...` (that is the generic form\'s: `"{op_type.name}"(%a, ...) : (...) -> ...`)'
        )
        return at, at + 1, msg, note
    before = text[op_start:start].rstrip()
    if "\n" in text[op_start + len(before) : start]:
        # The op ended before what it still expected: point just past its last token, not at
        # the next line's op.
        start = end = op_start + len(before)
    return start, end, msg, note


def _first_use(text: str, name: str, start: int, end: int) -> tuple[int, int]:
    match = re.search(rf"%{re.escape(name)}(?![\w$.-])", text)
    return (match.start(), match.end()) if match else (start, end)


def parse_module(text: str, filename: str = "<input>") -> ModuleOp:
    """Parse and verify `text`; any failure raises ChiplexError `file:line:col: error: ...`."""
    # A byte-order mark (some Windows editors write one) is not part of the program.
    text = text.removeprefix("\ufeff")
    source = Input(text, filename)
    if not text.strip():
        raise ChiplexError(_format(source, 0, 0, "empty input: expected an operation"))
    parser: _LocatingParser | None = None
    try:
        # The constructor already lexes the first token: it can fail like the rest of the parse.
        parser = _LocatingParser(make_context(), text, filename)
        module = parser.parse_module()
    except ParseError as e:
        start, end, note = e.span.start, e.span.end, ""
        msg = _CLEARER.get(e.msg, e.msg)
        if e.msg.startswith("Expected suffix identifier after"):
            # xDSL prints this message with an unfilled `{first_char}`.
            sigil = text[start : start + 1]
            msg = f"expected a name after '{sigil}'" + (
                " (comments start with //; '#' starts an attribute such as #mcm.chip<0>)"
                if sigil == "#"
                else ""
            )
        if e.msg.strip() == "in block definition":
            # xDSL looked for a block label (`^bb0:`) where an op or the closing brace should be.
            msg = (
                "unexpected end of file: a closing '}' is missing"
                if not text[start:].strip()
                else "expected an operation or '}' here"
            )
            if parser is not None and parser.last_op is not None and text[start:].strip():
                last, last_start = parser.last_op
                form = custom_form(type(last)) if last.dialect_name() in ("nn", "mcm") else None
                last_end = last_start + len(text[last_start:start].rstrip())
                if form is not None and "\n" not in text[last_end:start]:
                    # `nn.softmax %x axis = -1 : T -> T`: the op was complete before the `->`.
                    msg = f"unexpected text after the end of this {last.name}"
                    note = f"{last.name} is written: {form}"
        if (
            parser is not None
            and parser.forward_ssa_references
            and msg.startswith("values used but not defined")
        ):
            # xDSL reports this at the end of the file; the first use is far more useful.
            start, end = _first_use(text, next(iter(parser.forward_ssa_references)), start, end)
        if parser is not None and (
            clearer := _explain_custom_op_error(parser, text, start, end, msg)
        ):
            start, end, msg, note = clearer
        raise ChiplexError(_format(source, start, end, msg, note)) from None
    except RecursionError:
        start = parser.open_ops[-1] if parser is not None and parser.open_ops else 0
        raise ChiplexError(_format(source, start, start + 1, "nested too deeply")) from None
    except Exception as e:  # noqa: BLE001 - op builders may raise anything; locate it anyway
        start, msg, note = 0, str(e) or repr(e), ""
        if parser is not None:
            start = parser.open_ops[-1] if parser.open_ops else parser.pos
            if clearer := _explain_custom_op_error(parser, text, parser.pos, parser.pos, msg):
                start, _, msg, note = clearer
        raise ChiplexError(_format(source, start, start + 1, msg, note)) from None
    _verify_located(module, parser)
    _record_positions(module, parser)
    _check_definitions_dominate_uses(module, parser)
    return module


def _record_positions(module: ModuleOp, parser: _LocatingParser) -> None:
    source = parser.input
    line_starts = [0] + [m.end() for m in re.finditer("\n", source.content)]
    for op in module.walk():
        offset = parser.op_offsets.get(id(op))
        if offset is not None:
            line = bisect.bisect_right(line_starts, offset)
            locations.record(op, f"{source.name}:{line}:{offset - line_starts[line - 1] + 1}")


def _check_definitions_dominate_uses(module: ModuleOp, parser: _LocatingParser) -> None:
    """In a block every value must be defined before it is used (xDSL accepts forward references,
    which in a function body means a use before the definition or an op reading its own result)."""
    for op in module.walk():
        for region in op.regions:
            for block in region.blocks:
                order = {inner: i for i, inner in enumerate(block.ops)}
                for inner in block.ops:
                    for operand in inner.operands:
                        if not isinstance(operand, OpResult) or operand.op not in order:
                            continue
                        if order[operand.op] < order[inner]:
                            continue
                        name = f"%{operand.name_hint}" if operand.name_hint else "a value"
                        what = (
                            f"{inner.name} reads its own result {name} (a cycle)"
                            if operand.op is inner
                            else f"{inner.name} uses {name} before it is defined "
                            f"(at {locations.locate(operand.op).rstrip(': ') or 'a later op'})"
                        )
                        start = parser.op_offsets.get(id(inner), 0)
                        raise ChiplexError(_format(parser.input, start, start + 1, what))


def load_module(path: str | Path) -> ModuleOp:
    """Read, parse and verify an IR file; a missing or unreadable file is a ChiplexError."""
    return parse_module(read_ir_text(path), str(path))


def read_ir_text(path: str | Path) -> str:
    """The text of an IR file; a directory, a missing or unreadable file or bytes that are not
    UTF-8 (located at line:col) are ChiplexErrors."""
    p = Path(path)
    if p.is_dir():
        raise ChiplexError(f"{p}: error: is a directory, not an IR file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ChiplexError(f"{p}: error: no such file") from None
    except OSError as e:
        raise ChiplexError(f"{p}: error: cannot read file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Locate the first bad byte like any other error: line and column (in characters).
        good = data[: e.start].decode("utf-8")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        raise ChiplexError(
            f"{p}:{line}:{col}: error: not UTF-8: byte 0x{data[e.start]:02x} cannot be decoded "
            "(IR files are UTF-8; save the file as UTF-8)"
        ) from None
    return text
