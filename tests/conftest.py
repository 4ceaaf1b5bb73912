"""Hypothesis profiles for the suite.

`default` (what `make test` and CI run) is derandomised: every run draws the same examples, so a red CI
means a change broke something, not that a new draw found an old bug. `explore` draws fresh examples each
run (and keeps failing ones in the local database); run it to hunt for bugs:
`HYPOTHESIS_PROFILE=explore python -m pytest`.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
