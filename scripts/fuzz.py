"""Fuzz chiplex: generate bad inputs, run each, print counts of tracebacks, hangs and clobbered files.

    python scripts/fuzz.py --cases 1000 --seed 2026            # every family
    python scripts/fuzz.py --cases 200 --family ir --family toml --show 5

Each case runs in a forked worker; a case over --hang-seconds is counted as a hang and the worker is
replaced. The engine lives in tests/fuzz/engine.py (its fast slice runs with the tests).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from fuzz.engine import FAMILIES, HANG_SECONDS, Campaign, generate, summarize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--hang-seconds", type=float, default=HANG_SECONDS)
    parser.add_argument("--show", type=int, default=10, help="failing cases to print in full")
    args = parser.parse_args()
    cases = generate(args.cases, args.seed, args.family)
    campaign = Campaign(args.hang_seconds)
    started = time.perf_counter()
    outcomes = []
    try:
        for i, case in enumerate(cases, 1):
            outcomes.append(campaign.run(case))
            if i % 100 == 0:
                print(
                    f"  {i}/{len(cases)} in {time.perf_counter() - started:.0f} s", file=sys.stderr
                )
    finally:
        campaign.close()
    print(summarize(outcomes))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    bad = [o for o in outcomes if o.kind != "ok"]
    for outcome in bad[: args.show]:
        print(f"\n{outcome.kind}: {outcome.case.describe()[:400]}\n  {outcome.problems}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
