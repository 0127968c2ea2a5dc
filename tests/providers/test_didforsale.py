"""DIDforSale's call API against a local HTTP server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.outbound.providers.base import InvalidCallRequest, Outcome
from app.outbound.providers.didforsale import DIDforSale, DIDforSaleSettings
from tests.helpers.providers import call, wait_for_log

PATH = "/didforsaleapi/index.php/api/V2/CallTermination/"
CALLBACK = "https://glue.example.com/didml/status?action=42"
VOICE = "https://glue.example.com/didml/voice/pin?key=k"


def client(httpserver: HTTPServer, **settings: Any) -> DIDforSale:
    values: dict[str, Any] = {
        "base_url": httpserver.url_for(PATH),
        "api_key": "api-key-123",
        "callback_secret": "callback-secret-456",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(settings)
    return DIDforSale(DIDforSaleSettings(**values))


def test_click_to_call_posts_every_field(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"status": "success", "callSid": "CA1001"}
    )
    result = client(httpserver).place_call(call(status_callback=CALLBACK))
    [(request, _)] = httpserver.log
    assert request.method == "POST" and request.path == PATH
    assert request.args.to_dict() == {}
    assert request.form.to_dict() == {
        "apikey": "api-key-123",
        "from": "13125551212",  # no voice URL: the call is connected to `from`
        "to": "18772955100",
        "statusCallback": CALLBACK,
        "statusCallbackEvent": "initiated ringing answered completed",
        "statusCallbackMethod": "POST",
        "secretKey": "callback-secret-456",
        "optional": "42",
    }
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_call_ids == ("CA1001",)
    assert result.sent["apikey"] == result.sent["secretKey"] == "***"
    assert "api-key-123" not in repr(result) and "callback-secret-456" not in repr(result)


def test_a_voice_url_call_sends_the_caller_id_and_digits(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("OK")
    request_ = call(connect_to=None, voice_url=VOICE, send_digits="WWWW101", reference=None)
    result = client(httpserver).place_call(request_)
    [(request, _)] = httpserver.log
    assert request.form.to_dict() == {
        "apikey": "api-key-123",
        "from": "18005551212",
        "to": "18772955100",
        "url": VOICE,
        "Method": "POST",
        "senddigits": "WWWW101",
    }
    assert result.outcome is Outcome.ACCEPTED and result.detail == "OK"


def test_the_voice_url_is_masked_like_a_secret(httpserver: HTTPServer) -> None:
    # Glue's voice document URL carries a one-time token in its path.
    voice = "https://glue.example.com/didml/voice/one-time-token-7f3a/start"

    def echo(request: Request) -> Response:
        return Response(f"Invalid url {request.form['url']}", status=200)

    httpserver.expect_request(PATH).respond_with_handler(echo)
    request_ = call(connect_to=None, voice_url=voice, status_callback=CALLBACK)
    result = client(httpserver).place_call(request_)
    [(request, _)] = httpserver.log
    assert request.form["url"] == voice  # the server got the real URL
    assert result.sent["url"] == "***"
    assert result.sent["statusCallback"] == CALLBACK  # not a secret
    assert result.outcome is Outcome.REFUSED
    assert result.raw == result.detail == "Invalid url ***"
    assert "one-time-token" not in repr(result)


def test_a_voice_url_call_falls_back_to_the_default_caller_id(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("OK")
    request_ = call(connect_to=None, caller_id=None, voice_url=VOICE)
    client(httpserver, caller_id="+14155550100").place_call(request_)
    [(request, _)] = httpserver.log
    assert request.form["from"] == "14155550100"


def test_json_body_and_e164_numbers_when_the_settings_say_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("queued")
    settings = {"body": "json", "number_format": "e164", "status_events": ("completed",)}
    client(httpserver, **settings).place_call(call(status_callback=CALLBACK))
    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_json() == {
        "apikey": "api-key-123",
        "from": "+13125551212",
        "to": "+18772955100",
        "statusCallback": CALLBACK,
        "statusCallbackEvent": "completed",
        "statusCallbackMethod": "POST",
        "secretKey": "callback-secret-456",
        "optional": "42",
    }


@pytest.mark.parametrize(
    ("body", "outcome", "ids", "detail"),
    [
        (json.dumps({"status": "success", "callSid": "CA1"}), Outcome.ACCEPTED, ("CA1",), None),
        (json.dumps({"data": {"call_id": 991}}), Outcome.ACCEPTED, ("991",), None),
        (json.dumps([{"CallSid": "A"}, {"CallSid": "B"}]), Outcome.ACCEPTED, ("A", "B"), None),
        (json.dumps({"message": "Call queued"}), Outcome.ACCEPTED, (), "Call queued"),
        ("Call initiated, callSid: abc123", Outcome.ACCEPTED, ("abc123",), None),
        ("", Outcome.ACCEPTED, (), "HTTP 200"),
        (
            json.dumps({"status": "error", "message": "Invalid API key"}),
            Outcome.REFUSED,
            (),
            "Invalid API key",
        ),
        (json.dumps({"success": False, "error": "no balance"}), Outcome.REFUSED, (), None),
        ("Invalid apikey", Outcome.REFUSED, (), "Invalid apikey"),
    ],
)
def test_answers(
    httpserver: HTTPServer,
    body: str,
    outcome: Outcome,
    ids: tuple[str, ...],
    detail: str | None,
) -> None:
    httpserver.expect_request(PATH).respond_with_data(body)
    result = client(httpserver).place_call(call())
    assert result.outcome is outcome
    assert result.provider_call_ids == ids
    if detail:
        assert result.detail == detail


def test_any_2xx_is_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=202)
    assert client(httpserver).place_call(call()).outcome is Outcome.ACCEPTED


def test_4xx_refused_5xx_ambiguous(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_json({"error": "bad key"}, status=401)
    httpserver.expect_oneshot_request(PATH).respond_with_data("oops", status=500)
    assert client(httpserver).place_call(call()).outcome is Outcome.REFUSED
    assert client(httpserver).place_call(call()).outcome is Outcome.AMBIGUOUS


def test_a_slow_answer_is_ambiguous(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response('{"callSid": "CA1"}')

    httpserver.expect_request(PATH).respond_with_handler(slow)
    result = client(httpserver, read_timeout=0.15).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS and result.provider_call_ids == ()
    wait_for_log(httpserver)  # the handler still runs: its request is this test's
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"send_digits": "12a"}, "senddigits"),
        ({"send_digits": "1 2"}, "senddigits"),
        ({"status_callback": "ftp://glue.example.com/status"}, "statusCallback"),
        ({"voice_url": "not a url"}, "url"),
        ({"to_number": "18772955100"}, "to_number"),
        ({"connect_to": None}, "connect_to or voice_url"),
        ({"connect_to": None, "caller_id": None, "voice_url": VOICE}, "caller_id"),
        ({"at": datetime.now(UTC) + timedelta(hours=1)}, "at"),
        ({"survo_id": "1"}, "survo_id"),
        ({"reference": "r" * 256}, "optional"),
    ],
)
def test_a_broken_limit_is_refused_before_anything_is_sent(
    httpserver: HTTPServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCallRequest, match=message):
        client(httpserver).place_call(call(**changes))
    assert httpserver.log == []


def test_every_documented_digit_is_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("OK")
    result = client(httpserver).place_call(call(send_digits="0123456789*#wW"))
    assert result.outcome is Outcome.ACCEPTED


def test_without_an_api_key_nothing_is_sent(httpserver: HTTPServer) -> None:
    result = client(httpserver, api_key="").place_call(call(voice_url=VOICE))
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry  # no retry helps until it is configured
    assert result.sent["url"] == "***" and "apikey" not in result.sent
    assert "GLUE_DIDFORSALE_API_KEY" in result.detail
    assert httpserver.log == []


@pytest.mark.parametrize(
    "settings",
    [
        {"status_events": ("initiated", "hung-up")},
        {"status_events": ()},
        {"body": "xml"},
        {"number_format": "dotted"},
        {"voice_method": "PUT"},
    ],
)
def test_settings_outside_the_documented_values_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DIDforSaleSettings(**settings)
