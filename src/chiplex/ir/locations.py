"""Where each parsed op came from, so that errors found after parsing still say `file:line:col`.

`chiplex.ir.parse` records the source position of every op it builds; later stages (the graph view,
the passes) call `locate(op)` to prefix their messages. Ops built in Python have no position.
"""

from __future__ import annotations

import weakref

from xdsl.ir import Operation

_POSITIONS: weakref.WeakKeyDictionary[Operation, str] = weakref.WeakKeyDictionary()


def record(op: Operation, position: str) -> None:
    """Remember `file:line:col` for `op` (called by the parser)."""
    _POSITIONS[op] = position


def locate(op: Operation | None) -> str:
    """`file:line:col: ` for a parsed op (or its nearest parsed ancestor); empty when unknown."""
    while op is not None:
        position = _POSITIONS.get(op)
        if position:
            return f"{position}: "
        op = op.parent_op()
    return ""
