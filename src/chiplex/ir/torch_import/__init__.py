"""Import a `torch.nn.Module` into a `func.func` of `nn` ops, built in memory.

The package is laid out like the importer's stages (compare torch-mlir's `fx_importer.py` and its
per-family op tables):

* `capture`: `torch.export`, functionalisation of in-place ops, decompositions of single ops;
* `registry` + `rules/`: the ATen-to-`nn` rules, one registration per ATen op, grouped by family
  (`elementwise`, `contraction`, `normalization`, `reduction`, `pooling`, `shape`, `indexing`,
  `constants`, `attention`);
* `builder`: walks the exported graph, folds constants and parameter views, emits `nn` ops;
* `values`: what the builder tracks per FX node (parameters seen through views, constants);
* `api`: `import_module`, `import_with_constants`, `module_stats`;
* `specs`: model specs (`pkg.module:factory`) and example inputs for the command line.

The mapping rules:

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
* **Unsupported ops** are collected over the whole graph (after a retry on the graph with those
  ops decomposed) and reported in one ChiplexError: `op: count (first at file:line)`.
"""

from chiplex.ir.torch_import import rules  # noqa: F401 - registers every ATen rule
from chiplex.ir.torch_import.api import (
    ImportNote,
    ImportStats,
    import_module,
    import_with_constants,
    module_stats,
)
from chiplex.ir.torch_import.specs import (
    build_model,
    load_factory,
    load_model_spec,
    parse_input_spec,
)
from chiplex.ir.types import DTYPE_NAMES, parse_dtype

__all__ = [
    "DTYPE_NAMES",
    "ImportNote",
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
