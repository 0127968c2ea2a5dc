"""How far a caller got (app/flows/progress.py), from plain data."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flows.loader import load_flow
from app.flows.model import Flow
from app.flows.progress import CLAIM, PIN, reached


@pytest.fixture
def flows(flows_dir: Path) -> dict[str, Flow]:
    return {name: load_flow(flows_dir / f"{name}.yaml") for name in ("verify_caller", "group_line")}


def test_the_claim_then_the_pin_and_never_back(flows: dict[str, Flow]) -> None:
    flow = flows["verify_caller"]
    assert reached(None, flow, {}, "+13125550199", checked=False) is None
    assert reached(None, flow, {"account": "NA"}, None, checked=False) is None
    assert reached(None, flow, {"account": "1001"}, None, checked=False) == CLAIM
    assert reached(CLAIM, flow, {"account": "1001"}, None, checked=False) is None  # no change
    assert reached(CLAIM, flow, {"pin": "2468"}, None, checked=True) == PIN
    assert reached(PIN, flow, {"account": "1001"}, None, checked=False) is None  # never back
    assert reached(None, flow, {"account": "1001", "pin": "1"}, None, checked=True) == PIN
