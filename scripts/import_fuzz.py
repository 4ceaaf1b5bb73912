"""A campaign of property checks of the PyTorch importer: random small modules, imported,
interpreted and compared with torch; prints the count of each outcome and the distinct failures.

    python scripts/import_fuzz.py --examples 2000 --seed 1          # every step family
    python scripts/import_fuzz.py --examples 300 --family where --family batch_norm --show 5
    python scripts/import_fuzz.py --examples 200 --family unmappable --family linear  # the errors

Outcomes (tests/importfuzz/generator.py): ok, mismatch (element-wise against torch float32),
dtype_mismatch (norm-wise against torch in the module's own dtype), unsupported (the importer's
located report; the ATen ops are counted), export_error (torch.export refused), bad_error (an
error without the op and its line) and crash (a traceback). Exit code 1 if any mismatch,
bad_error or crash was found. The fast slice runs with the tests (tests/test_import_properties.py).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from importfuzz.generator import ALL_STEPS, STEPS, Case, Outcome, cases, check  # noqa: E402

FAILURES = ("mismatch", "dtype_mismatch", "bad_error", "crash")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--family", action="append", choices=sorted(ALL_STEPS))
    parser.add_argument("--show", type=int, default=10, help="failing cases to print in full")
    args = parser.parse_args()
    results: list[tuple[Case, Outcome]] = []
    started = time.perf_counter()

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(args.max_steps, tuple(args.family or STEPS)))
    def campaign(case: Case) -> None:
        results.append((case, check(case)))
        if len(results) % 100 == 0:
            print(f"  {len(results)} in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    campaign()
    kinds = collections.Counter(o.kind for _, o in results)
    ops = collections.Counter(op for _, o in results if o.kind == "unsupported" for op in o.ops)
    print(
        f"examples {len(results)} (seed {args.seed}): "
        + ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds))
    )
    uncompared = sum(1 for _, o in results if o.kind == "ok" and o.detail)
    if uncompared:
        print(f"  of the ok: {uncompared} with integer activations, imported but not compared")
    if ops:
        print("unsupported ops: " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    bad = [(c, o) for c, o in results if o.kind in FAILURES]
    seen: set[str] = set()
    for case, outcome in bad:
        key = outcome.kind + case.describe().split(": ", 1)[1]
        if key in seen or len(seen) >= args.show:
            continue
        seen.add(key)
        print(f"\n{outcome.kind}: {case.describe()}\n  {outcome.detail[-1500:]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
