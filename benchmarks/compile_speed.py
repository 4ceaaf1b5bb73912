"""Compile-time table: parse, graph view, dp placement and the whole pipeline, per model and target.

    .venv/bin/python benchmarks/compile_speed.py

Models are zoo examples plus a 48-layer BERT stack (imported in memory) so the dp strategy's scaling
shows. Prints a markdown table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from chiplex.compile import compile_module, module_text
from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import import_module
from chiplex.models import bert_base, example_inputs
from chiplex.passes.strategies import place_dp
from chiplex.targets.target import load_target

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"


def _example(name: str) -> Callable[[], str]:
    return lambda: (EXAMPLES / f"{name}.mlir").read_text()


def _bert_48() -> str:
    model = bert_base(num_layers=48)
    return module_text(import_module(model, example_inputs(model), name="bert_48layer"))


MODELS: dict[str, Callable[[], str]] = {
    "mlp": _example("mlp"),
    "bert_layer": _example("bert_layer"),
    "bert_base": _example("bert_base"),
    "resnet50": _example("resnet50"),
    "bert_48layer": _bert_48,
}
TARGETS = ["tpu-ring8", "simba-6x6"]


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    print("| model | ops | target | parse s | graph s | dp s | full pipeline s | result |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in MODELS.items():
        text = make()
        for target_name in TARGETS:
            target = load_target(target_name)
            module, parse_s = timed(lambda: parse_module(text, f"{name}.mlir"))  # noqa: B023
            graph, graph_s = timed(lambda: graph_from_module(module))  # noqa: B023
            try:
                _, dp_s = timed(lambda: place_dp(graph, target))  # noqa: B023
                _, full_s = timed(lambda: compile_module(module, target_name))  # noqa: B023
                result = "legal"
            except ChiplexError as err:
                dp_s = full_s = float("nan")
                reasons = [line.strip() for line in str(err).splitlines() if line.strip()]
                result = f"infeasible: {' '.join(reasons)[:60]}"
            print(
                f"| {name} | {graph.num_nodes} | {target_name} | {parse_s:.2f} | {graph_s:.3f} | "
                f"{dp_s:.3f} | {full_s:.2f} | {result} |"
            )


if __name__ == "__main__":
    main()
