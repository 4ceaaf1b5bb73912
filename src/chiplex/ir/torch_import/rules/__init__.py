"""The ATen-to-`nn` rules, one module per op family; importing this package registers them all."""

from chiplex.ir.torch_import.rules import (  # noqa: F401 - imported for their registrations
    attention,
    constants,
    contraction,
    elementwise,
    indexing,
    normalization,
    pooling,
    reduction,
    shape,
)
