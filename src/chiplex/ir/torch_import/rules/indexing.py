"""Indexing: embeddings and gathers."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    norm_dim,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
)
from chiplex.ir.torch_import.values import (
    Value,
)


@aten_rule("embedding")
def _embedding(
    imp: Importer, node: torch.fx.Node, table: Value, ids: Value, *rest: Any, **kw: Any
) -> SSAValue:
    return imp.emit(nn.EmbeddingOp(imp.value(table), imp.value(ids), imp.meta_type(node)))


@aten_rule("index_select")
def _index_select(imp: Importer, node: torch.fx.Node, x: Value, dim: int, index: Value) -> SSAValue:
    data = imp.value(x)
    rank = len(shape_of(data))
    return imp.emit(nn.GatherOp(data, imp.value(index), norm_dim(dim, rank), imp.meta_type(node)))
