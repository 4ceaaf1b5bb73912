"""`host-embeddings{target=NAME}`: a table too large for one chip, read at the ids the user feeds, is
looked up by the host ("embedding on host", as TPU embedding does), not stored on the module.

A BERT-style model's token table is most of its weights that are not matrix weights (BERT-base:
30522 x 768 = 22.35 MiB in int8 of 104.79 MiB; tpu-ring8 holds 8 x 13 MiB = 104 MiB in all). The
lookup does no arithmetic; on the module the table only takes SRAM. The host, which has the ids
anyway, can gather the rows itself and send them instead of the ids: 128 tokens x 768 x bf16 =
192 KiB per sample instead of 1 KiB of ids, and 22.35 MiB of SRAM freed for the rest.

The rewrite: every `nn.embedding %table, %ids` whose `%ids` is a function argument and whose
table is larger than one chip (`chip.sram_bytes + chip.dram_bytes`, or `max_bytes` when given) and
read by nothing but such lookups becomes a new function argument of the lookup's result type; the
table's `nn.param` goes. The module records each lookup (`chiplex.ir.host_lookup`), so that

* `chiplex compile` says what stays on the host, why, and how many bytes per sample it sends;
* the interpreter, given the original arguments, runs the host step (`table[ids]`) and then the
  function: a test compares before and after with `assert_pipeline_preserves_semantics`;
* whoever deploys the program knows what the host must do.

The function keeps its original arguments, in order; an id argument no op reads any more costs
nothing on the module (the graph counts host bytes per reader). Flops are unchanged (a lookup has
none); the module's parameter bytes drop by the table's. A table also read another way (a tied LM
head's matmul) stays: `shard-params`, which runs next, splits it across chips. The simulator does
not model host input traffic at all (nor the ids before), so its numbers do not include the
rows' transfer; the summary line states the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType, ModuleOp, StringAttr, TensorType
from xdsl.ir import BlockArgument, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import single_function
from chiplex.ir.host_lookup import HostLookup, record_host_lookups
from chiplex.ir.types import tensor_bytes
from chiplex.passes.common import resolve_target
from chiplex.passes.options import ByteSize


def _host_readable(table: nn.ParamOp, function: func.FuncOp) -> list[nn.EmbeddingOp] | None:
    """The lookups of `table` when every reader is an `nn.embedding` at ids the function takes."""
    lookups: list[nn.EmbeddingOp] = []
    for use in table.result.uses:
        user = use.operation
        if not (isinstance(user, nn.EmbeddingOp) and use.index == 0):
            return None
        ids = user.ids
        if not (isinstance(ids, BlockArgument) and ids.owner is function.body.block):
            return None
        lookups.append(user)
    return lookups or None


@dataclass(frozen=True)
class HostEmbeddings(ModulePass):
    name = "host-embeddings"
    target: str | None = None
    max_bytes: ByteSize | None = None
    """Move tables larger than this many bytes (default: larger than one chip's memory)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ChiplexError(f"{self.name}: max_bytes must be >= 0, got {self.max_bytes}")
        limit = self.max_bytes
        if limit is None:
            limit = resolve_target(op, self.target, self.name).chip.capacity_bytes
        function = single_function(op)
        block = function.body.block
        moved: list[HostLookup] = []
        arg_types = list(function.function_type.inputs.data)
        for table in [p for p in block.ops if isinstance(p, nn.ParamOp)]:
            if tensor_bytes(table.result.type) <= limit:
                continue
            lookups = _host_readable(table, function)
            if lookups is None:
                continue
            view = table.attributes.get("torch_view")
            # One argument per distinct ids argument (two lookups of the same ids are one).
            rows_of: dict[SSAValue, BlockArgument] = {}
            for lookup in lookups:
                ids = cast(BlockArgument, lookup.ids)
                rows = rows_of.get(ids)
                if rows is None:
                    rows_type = cast(TensorType, lookup.result.type)
                    rows = block.insert_arg(rows_type, len(block.args))
                    rows.name_hint = f"{lookup.result.name_hint or 'embedding'}.host_rows"
                    arg_types.append(rows_type)
                    rows_of[ids] = rows
                    moved.append(
                        HostLookup(
                            table=table.param_name.data,
                            table_type=cast(TensorType, table.result.type),
                            ids=ids.index,
                            arg=rows.index,
                            rows_type=rows_type,
                            torch_view=view.data if isinstance(view, StringAttr) else None,
                        )
                    )
                lookup.result.replace_all_uses_with(rows)
                Rewriter.erase_op(lookup)
            Rewriter.erase_op(table)
        if not moved:
            return
        function.function_type = FunctionType.from_lists(
            arg_types, list(function.function_type.outputs.data)
        )
        if function.arg_attrs is not None:
            from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr

            attrs = list(function.arg_attrs.data)
            attrs += [DictionaryAttr({})] * (len(arg_types) - len(attrs))
            function.arg_attrs = ArrayAttr(attrs)
        record_host_lookups(op, moved)
