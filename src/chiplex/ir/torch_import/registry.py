"""The ATen-to-`nn` rule table: one registration per ATen op (by overload packet, `add` for
`aten.add.Tensor` and `aten.add.Scalar`), in the manner of torch-mlir's op tables.

A rule is `(importer, node, *args, **kwargs) -> value`; the families live in `rules/`.
"""

from __future__ import annotations

from collections.abc import Callable

from chiplex.ir.torch_import.values import Value

# Ops that only change how a tensor is seen or are identities at inference: the input passes through.
IDENTITY = frozenset(
    {"contiguous", "clone", "alias", "detach", "lift_fresh_copy", "dropout", "feature_dropout"}
    | {"alpha_dropout"}
)
# Ops without a tensor result that export leaves in the graph as checks: dropped.
CHECKS = frozenset(
    {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}
    | {"sym_constrain_range", "_assert_async", "_functional_assert_async"}
)
# Ops whose result is a fresh constant tensor (no tensor inputs): evaluated at import time.
FACTORIES = frozenset(
    {"full", "zeros", "ones", "empty", "arange", "scalar_tensor", "eye", "tensor", "linspace"}
)

# Ops no combination of nn ops computes, whatever their arguments: reported with why and what to do
# instead, and not decomposed (no decomposition of them maps either).
_POSITIONS = (
    "its result is positions in the data (indices, sorting, or a data-dependent shape), which nn "
    "has no op for: return the scores and pick the indices outside the model, or select with "
    "masks (torch.where)"
)
_RANDOM = (
    "random numbers: the IR computes a fixed function of its inputs; pass the noise as an "
    "input, or configure the model without it"
)
UNMAPPABLE: dict[str, str] = dict.fromkeys(
    ("argmax", "argmin", "sort", "argsort", "topk", "kthvalue", "nonzero", "unique"), _POSITIONS
) | dict.fromkeys(
    ("rand", "randn", "rand_like", "randn_like", "randint", "randint_like", "randperm")
    + ("bernoulli", "normal", "uniform", "exponential", "multinomial"),
    _RANDOM,
)

Rule = Callable[..., Value]
ATEN_RULES: dict[str, Rule] = {}
# Ops without a handler that are fine on constants (folded): not reported downstream of a failure.
FOLDABLE: dict[str, None] = dict.fromkeys(CHECKS | FACTORIES | {"triu", "tril", "logical_not"})


def aten_rule(*names: str) -> Callable[[Rule], Rule]:
    """Register `fn` as the rule of the ATen ops `names` (overload packets); each op has one."""

    def register(fn: Rule) -> Rule:
        for n in names:
            if n in ATEN_RULES:
                raise ValueError(f"two rules for aten.{n}: {ATEN_RULES[n].__name__}, {fn.__name__}")
            ATEN_RULES[n] = fn
        return fn

    return register


def packet(target: object) -> str:
    """`aten.add.Tensor` -> `add`; a Python function -> its name."""
    overload = getattr(target, "overloadpacket", None)
    if overload is not None:
        return str(overload.__name__)
    return getattr(target, "__name__", str(target))
