"""Compile-time table: parse, graph view, dp placement and the whole pipeline, per model and target.

    python benchmarks/compile_speed.py

Models are the hand-built examples plus deeper BERT stacks (built in memory by scripts/gen_examples.py)
so the dp strategy's scaling shows. Prints a markdown table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_examples import bert, mlp  # noqa: E402

from chiplex.compile import compile_module, module_text  # noqa: E402
from chiplex.errors import ChiplexError  # noqa: E402
from chiplex.ir.graph import graph_from_module  # noqa: E402
from chiplex.ir.parse import parse_module  # noqa: E402
from chiplex.passes.strategies import place_dp  # noqa: E402
from chiplex.targets.target import load_target  # noqa: E402

MODELS = {
    "mlp": mlp,
    "bert_1layer": lambda: bert(1),
    "bert_base": lambda: bert(12),
    "bert_48layer": lambda: bert(48),
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
        text = module_text(make())
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
                result = f"infeasible: {str(err).splitlines()[0][:60]}"
            print(
                f"| {name} | {graph.num_nodes} | {target_name} | {parse_s:.2f} | {graph_s:.3f} | "
                f"{dp_s:.3f} | {full_s:.2f} | {result} |"
            )


if __name__ == "__main__":
    main()
