"""The test phone's PIN checks spend the admin's allowance of the PIN routes'
limits and are logged: the trial's own lockout travels with the client, which
may drop it, so the phone must not be a way to guess a PIN unseen."""

from __future__ import annotations

import json
import logging
import re

import pytest
from flask.testing import FlaskClient

URL = "/admin/flows/verify_caller/try"


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {
        **app_config,
        "RATE_LIMIT_ENABLED": True,
        "RATE_LIMIT_PER_CALLER": "3/minute",
        "RATE_LIMIT_PER_SOURCE": "",
    }


def post(client: FlaskClient, csrf: str, token: str, **fields: str) -> tuple[int, dict, str]:
    data = {"csrf_token": csrf, "platform": "ifbyphone", "version": "1", "token": token, **fields}
    response = client.post(URL, data=data)
    return response.status_code, response.get_json(), response.headers.get("Retry-After", "")


def test_pin_checks_spend_the_admins_allowance_however_the_trial_restarts(
    admin_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    found = re.search(r'data-csrf="([^"]+)"', admin_client.get(URL).get_data(as_text=True))
    assert found
    csrf = found.group(1)
    wrong = json.dumps({"account": "1001", "pin": "9753"})
    caplog.set_level(logging.INFO, logger="app.admin.test_phone")
    outcomes = []
    for _ in range(3):
        # Each time a new trial (no token): the client-held counts start at zero.
        status, body, _ = post(admin_client, csrf, "", restart="1")
        assert status == 200
        status, body, _ = post(admin_client, csrf, body["token"], answers=wrong)
        assert status == 200
        outcomes.append(body["outcome"])
    assert outcomes == ["retry", "retry", "retry"]
    # The fourth check in the minute is refused, a new trial or not, right PIN or not.
    status, body, _ = post(admin_client, csrf, "", restart="1")
    right = json.dumps({"account": "1001", "pin": "2468"})
    status, refused, retry_after = post(admin_client, csrf, body["token"], answers=right)
    assert status == 429 and int(retry_after) >= 1
    assert refused["error"].startswith("Too many PIN checks from the test phone")
    checks = [r.getMessage() for r in caplog.records if "test phone: admin" in r.getMessage()]
    assert checks == ["test phone: admin 1900 checked account 1001: rejected (wrong_pin)"] * 3
    assert "9753" not in caplog.text and "2468" not in caplog.text
