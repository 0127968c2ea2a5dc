"""VoIPtech Click2Call URL dialling against a local HTTP server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.outbound.providers.base import InvalidCallRequest, Outcome
from app.outbound.providers.voiptech import VoIPtech, VoIPtechSettings
from tests.helpers.providers import call, wait_for_log

PATH = "/API/dialup.php"
UID1, UID2 = "1700000000.101", "1700000000.102"


def client(httpserver: HTTPServer, **settings: Any) -> VoIPtech:
    values: dict[str, Any] = {
        "base_url": httpserver.url_for(PATH),
        "user": "agent7",
        "password": "pbx-password-9",
        "org": "acme",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(settings)
    return VoIPtech(VoIPtechSettings(**values))


def test_sends_every_field(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"status": "ok", "uid1": UID1, "uid2": UID2}
    )
    result = client(httpserver).place_call(call(timeout_seconds=30))
    [(request, _)] = httpserver.log
    assert request.method == "POST" and request.path == PATH
    assert request.args.to_dict() == {}
    assert request.form.to_dict() == {
        "user": "agent7",
        "pass": "pbx-password-9",
        "org": "acme",
        "dial1": "18772955100",
        "dial2": "13125551212",
        "Response": "yes",
        "RFormat": "json",
        "showUID": "yes",
        "SetCID": "18005551212",
        "Timeout": "30",
    }
    assert result.outcome is Outcome.CONNECTED
    assert result.provider_call_ids == (UID1, UID2)
    assert result.sent["pass"] == "***" and result.sent["user"] == "agent7"
    assert "pbx-password-9" not in repr(result)


def test_an_extension_is_dialled_as_is_and_numbers_may_keep_the_plus(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH).respond_with_data("ok")
    client(httpserver, number_format="e164").place_call(call(connect_to="201", caller_id=None))
    [(request, _)] = httpserver.log
    assert request.form["dial1"] == "+18772955100" and request.form["dial2"] == "201"
    assert "SetCID" not in request.form and "Timeout" not in request.form


def test_get_when_the_settings_say_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="GET").respond_with_data("ok")
    client(httpserver, http_method="GET", response_format="text").place_call(call())
    [(request, _)] = httpserver.log
    assert request.args["RFormat"] == "text" and request.args["dial2"] == "13125551212"


@pytest.mark.parametrize(
    ("body", "content_type", "outcome", "ids"),
    [
        # json
        (json.dumps({"status": "ok", "uid1": UID1, "uid2": UID2}), "json", "connected", 2),
        (json.dumps({"Result": "OK", "UniqueID": [UID1, UID2]}), "json", "connected", 2),
        (json.dumps({"response": {"status": "Fail", "reason": "No answer"}}), "json", "no", 0),
        (json.dumps({"status": "Fail", "reason": "Busy"}), "json", "busy", 0),
        (json.dumps({"answer": "ok"}), "json", "connected", 0),
        (json.dumps({"x": "y"}), "json", "ambiguous", 0),
        # text
        (f"ok {UID1} {UID2}", "text", "connected", 2),
        (f"OK\nuid1={UID1}\nuid2={UID2}\n", "text", "connected", 2),
        ("Fail", "text", "no", 0),
        ("Fail - Unreachable", "text", "no", 0),
        ("FAIL: busy", "text", "busy", 0),
        ("Fail: wrong user or password", "text", "refused", 0),
        ("Fail: missing parameter dial2", "text", "refused", 0),
        ("", "text", "ambiguous", 0),
        ("Service temporarily unavailable", "text", "ambiguous", 0),
        # html
        (f"<html><body><b>OK</b><br>UID1: {UID1}<br>UID2: {UID2}</body></html>", "html", "c", 2),
        ("<!DOCTYPE html><html><body>Fail</body></html>", "html", "no", 0),
        # xml
        (
            f"<?xml version='1.0'?><response><status>ok</status><uid1>{UID1}</uid1>"
            f"<uid2>{UID2}</uid2></response>",
            "xml",
            "connected",
            2,
        ),
        (f'<result status="Fail" uid1="{UID1}"/>', "xml", "no", 1),
        ("<response><message>call failed</message></response>", "xml", "no", 0),
        ("<response><status>??</status></response>", "xml", "ambiguous", 0),
    ],
)
def test_ok_and_fail_in_every_format(
    httpserver: HTTPServer, body: str, content_type: str, outcome: str, ids: int
) -> None:
    mime = {"json": "application/json", "text": "text/plain", "html": "text/html"}
    httpserver.expect_request(PATH).respond_with_data(
        body, content_type=mime.get(content_type, "text/xml")
    )
    result = client(httpserver).place_call(call())
    expected = {"c": "connected", "no": "no_answer"}.get(outcome, outcome)
    assert result.outcome == expected
    assert result.provider_call_ids == (UID1, UID2)[:ids]


def test_the_answer_is_awaited_past_the_first_legs_ring_time(httpserver: HTTPServer) -> None:
    def after_a_while(request: Request) -> Response:
        time.sleep(0.4)
        return Response("ok")

    httpserver.expect_request(PATH).respond_with_handler(after_a_while)
    # read_timeout alone (0.1 s) would give up; the PBX rings the first leg for
    # Timeout seconds before it answers, so the client waits longer.
    result = client(httpserver, read_timeout=0.1).place_call(call(timeout_seconds=1))
    assert result.outcome is Outcome.CONNECTED
    wait_for_log(httpserver)  # logged once the handler returned: never in the next test
    assert len(httpserver.log) == 1


def test_a_future_call(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json({"status": "ok"})
    at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    result = client(httpserver).place_call(call(at=at))
    [(request, _)] = httpserver.log
    form = request.form.to_dict()
    assert form["Date"] == at.strftime("%Y%m%d%H%M")
    assert form["Maxretry"] == "2" and form["Retrytime"] == "300" and form["ident"] == "42"
    assert {"user", "pass", "org", "dial1", "dial2"} <= set(form)
    assert result.outcome is Outcome.ACCEPTED  # scheduled, not yet rung


def test_a_future_call_in_the_pbx_zone_with_its_own_ident(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Fail")
    at = datetime(2099, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5)))
    settings = {"timezone": "Asia/Jerusalem", "ident": "org-77", "max_retry": 0}
    result = client(httpserver, **settings).place_call(call(at=at))
    [(request, _)] = httpserver.log
    assert request.form["Date"] == "209901021004"  # 08:04 UTC, 10:04 in Jerusalem
    assert request.form["ident"] == "org-77" and request.form["Maxretry"] == "0"
    assert result.outcome is Outcome.REFUSED  # nothing was scheduled


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timeout_seconds": 0}, "Timeout"),
        ({"timeout_seconds": 301}, "Timeout"),
        ({"at": datetime(2099, 1, 1, 12, 0)}, "timezone-aware"),
        ({"at": datetime.now(UTC) - timedelta(minutes=1)}, "future"),
        ({"at": datetime.now(UTC) + timedelta(days=1), "reference": None}, "ident"),
        ({"caller_id": "18005551212"}, "caller_id"),
        ({"connect_to": "sales"}, "connect_to"),
        ({"connect_to": "+1555"}, "connect_to"),
        ({"connect_to": None}, "dial2"),
        ({"voice_url": "https://glue.example.com/v.xml"}, "voice_url"),
        ({"send_digits": "1"}, "send_digits"),
        ({"survo_id": "1"}, "survo_id"),
    ],
)
def test_a_broken_limit_is_refused_before_anything_is_sent(
    httpserver: HTTPServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCallRequest, match=message):
        client(httpserver).place_call(call(**changes))
    assert httpserver.log == []


@pytest.mark.parametrize("seconds", [1, 300])
def test_the_timeout_limits_themselves_are_accepted(httpserver: HTTPServer, seconds: int) -> None:
    httpserver.expect_request(PATH).respond_with_data("ok")
    result = client(httpserver).place_call(call(timeout_seconds=seconds))
    assert result.outcome is Outcome.CONNECTED


def test_without_an_account_nothing_is_sent(httpserver: HTTPServer) -> None:
    result = client(httpserver, password="", org="").place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry
    assert "GLUE_VOIPTECH_PASSWORD" in result.detail and "GLUE_VOIPTECH_ORG" in result.detail
    assert httpserver.log == []


@pytest.mark.parametrize(
    "settings",
    [
        {"timezone": "Mars/Olympus"},
        {"response_format": "yaml"},
        {"retry_seconds": 0},
        {"max_retry": -1},
        {"http_method": "PUT"},
    ],
)
def test_settings_outside_the_documented_values_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        VoIPtechSettings(**settings)
