"""What every Glue host of the multi-host tests is told."""

from __future__ import annotations

# What the platforms are told Glue's address is: the load balancer's. Every host
# must use the same one, or Twilio signatures and <Gather> URLs would depend on
# which host answered.
PUBLIC_URL = "http://localhost"
SERVER_ENV = {
    "GLUE_PUBLIC_URL": PUBLIC_URL,
    "GLUE_LOCKOUT_THRESHOLD": "5",
    # Per-caller limits count each call's few requests from one test number;
    # the limits have tests of their own.
    "GLUE_RATE_LIMIT_ENABLED": "false",
    # Hundreds of callers released at once queue for four workers, and on a slow
    # machine some would wait past the budget and be shed: these tests check
    # each caller's own answer; shedding has tests of its own.
    "GLUE_QUEUE_BUDGET": "0",
}

# The servers outlive a test, as they outlive a call: the flow versions they
# have learnt stay published between tests, as they would in a deployment.
KEPT_TABLES = ("flow_versions",)
