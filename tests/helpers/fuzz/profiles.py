"""How hard the fuzz tests try: a quick default for `make test`, and `make fuzz`.

HYPOTHESIS_PROFILE=fuzz selects many more examples. The settings are given to
each test explicitly (not loaded as the global profile), so other tests that
use hypothesis keep their own.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings

# Each test reuses one app and database for all its examples, on purpose.
_BASE = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)
# `make test` (and so CI) replays the same examples every run, so a red run is
# always reproducible; `make fuzz` explores new ones.
settings.register_profile("glue", _BASE, max_examples=20, derandomize=True)
settings.register_profile("fuzz", _BASE, max_examples=1000)

PROFILE = "fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "glue"
ACTIVE = settings.get_profile(PROFILE)


def examples(scale: float = 1.0) -> settings:
    """The active profile, with `scale` times its examples (slow targets get fewer)."""
    return settings(ACTIVE, max_examples=max(1, round(ACTIVE.max_examples * scale)))


def generated_name(target: str) -> str:
    """The pytest name of the generated test of `target` (a route or a command)."""
    return "test_fuzz_" + (re.sub(r"[^a-z0-9]+", "_", target.lower()).strip("_") or "root")
