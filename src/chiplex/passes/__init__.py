"""chiplex's module passes, registered by name (a new pass: one file plus one line here)."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def _annotate_costs() -> type[ModulePass]:
    from chiplex.passes.annotate_costs import AnnotateCosts

    return AnnotateCosts


def _place() -> type[ModulePass]:
    from chiplex.passes.place import Place

    return Place


def _legalize_placement() -> type[ModulePass]:
    from chiplex.passes.legalize_placement import LegalizePlacement

    return LegalizePlacement


def _insert_transfers() -> type[ModulePass]:
    from chiplex.passes.insert_transfers import InsertTransfers

    return InsertTransfers


def _split_chiplets() -> type[ModulePass]:
    from chiplex.passes.split_chiplets import SplitChiplets

    return SplitChiplets


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "annotate-costs": _annotate_costs,
    "place": _place,
    "legalize-placement": _legalize_placement,
    "insert-transfers": _insert_transfers,
    "split-chiplets": _split_chiplets,
}


def default_pipeline(target: str, strategy: str = "dp") -> str:
    return (
        f"annotate-costs{{target={target}}},place{{strategy={strategy}}},legalize-placement,"
        "insert-transfers,split-chiplets"
    )
