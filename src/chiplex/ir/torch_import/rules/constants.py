"""Factories of splat constants (`full`, `zeros`, `ones`, `*_like`, ...)."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.values import (
    Unsupported,
    is_float_elem,
)


@aten_rule("full", "zeros", "ones", "scalar_tensor", "full_like", "zeros_like", "ones_like")
@aten_rule("new_full", "new_zeros", "new_ones", "empty", "empty_like", "new_empty")
def _splat(imp: Importer, node: torch.fx.Node, *args: Any, **kw: Any) -> SSAValue:
    name = packet(node.target)
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
        raise Unsupported("a fill value that is not a constant")
    rtype = imp.meta_type(node)
    if not is_float_elem(rtype.get_element_type()):
        value = int(value)
    return imp.emit(nn.ConstantOp(value, rtype), "cst")
