"""The Twilio client (the official `twilio` package) against a local HTTP server
standing in for Twilio's REST API: the form fields and auth it receives, and
how each answer becomes an outcome."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from app.outbound.providers import make_provider
from app.outbound.providers.base import InvalidCallRequest, Outcome
from app.outbound.providers.twilio import Twilio
from tests.helpers.providers import CALLER_ID, TARGET, USER, call, wait_for_log

SID = "AC" + "0" * 31 + "1"
TOKEN = "auth-token-secret"
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"
DIAL_URL = "https://glue.example.com/calls/voice/dial/42/one-time-token"
STATUS_URL = "https://glue.example.com/twiml/status?action=42"
CALL_SID = "CA" + "f" * 32


def client(httpserver: HTTPServer, **config: Any) -> Twilio:
    settings = {
        "TWILIO_API_URL": httpserver.url_for("/"),
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PROVIDER_READ_TIMEOUT": 5.0,
        **config,
    }
    provider = make_provider("twilio", settings)
    assert isinstance(provider, Twilio)
    return provider


def created(status: str = "queued") -> dict[str, Any]:
    return {"sid": CALL_SID, "account_sid": SID, "status": status, "to": USER, "from": CALLER_ID}


def request_of() -> Any:
    return call(dial_url=DIAL_URL, status_callback=STATUS_URL)


def form_of(httpserver: HTTPServer) -> dict[str, list[str]]:
    [(request, _)] = httpserver.log
    return parse_qs(request.get_data(as_text=True), keep_blank_values=True)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_call_sends_the_first_leg_with_glue_twiml_and_status_callbacks(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(CALLS, method="POST").respond_with_json(created(), status=201)
    result = client(httpserver).place_call(request_of())
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_call_ids == (CALL_SID,)
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == basic(SID, TOKEN)
    assert form_of(httpserver) == {
        "To": [USER],
        "From": [CALLER_ID],
        "Url": [DIAL_URL],
        "Method": ["POST"],
        "StatusCallback": [STATUS_URL],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
    }
    # The URL's token is never kept.
    assert result.sent["Url"] == "***"
    assert result.sent["To"] == USER
    assert json.loads(result.raw) == {"sid": CALL_SID, "status": "queued"}
    assert TARGET not in request.get_data(as_text=True)  # the second party is in the TwiML


def test_an_api_key_authenticates_instead_of_the_auth_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CALLS, method="POST").respond_with_json(created(), status=201)
    result = client(
        httpserver, TWILIO_API_KEY_SID="SK" + "1" * 32, TWILIO_API_KEY_SECRET="key-secret"
    ).place_call(request_of())
    assert result.outcome is Outcome.ACCEPTED
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == basic("SK" + "1" * 32, "key-secret")
    assert request.path == CALLS  # still the account's calls


def test_a_code_call_fetches_its_voice_document(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CALLS, method="POST").respond_with_json(created(), status=201)
    voice = "https://glue.example.com/calls/voice/7/secret-token"
    result = client(httpserver).place_call(
        call(connect_to=None, voice_url=voice, status_callback=STATUS_URL)
    )
    assert result.outcome is Outcome.ACCEPTED
    assert form_of(httpserver)["Url"] == [voice]
    assert "secret-token" not in json.dumps(result.sent)


def test_invalid_to_is_refused_for_good_with_twilio_s_error(httpserver: HTTPServer) -> None:
    error = {
        "code": 21211,
        "message": "The 'To' number +18772955100 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    httpserver.expect_request(CALLS, method="POST").respond_with_json(error, status=400)
    result = client(httpserver).place_call(request_of())
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry
    assert "21211" in result.detail and "not a valid phone number" in result.detail
    assert json.loads(result.raw)["code"] == 21211


def test_bad_credentials_are_refused_and_may_be_retried(httpserver: HTTPServer) -> None:
    error = {"code": 20003, "message": "Authenticate", "status": 401}
    httpserver.expect_request(CALLS, method="POST").respond_with_json(error, status=401)
    result = client(httpserver).place_call(request_of())
    assert result.outcome is Outcome.REFUSED and result.may_retry
    assert "20003" in result.detail
    assert TOKEN not in result.detail + result.raw


def test_a_server_error_is_ambiguous(httpserver: HTTPServer) -> None:
    error = {"code": 20500, "message": "Internal Server Error", "status": 500}
    httpserver.expect_request(CALLS, method="POST").respond_with_json(error, status=500)
    result = client(httpserver).place_call(request_of())
    assert result.outcome is Outcome.AMBIGUOUS
    assert len(httpserver.log) == 1  # sent once, never again


def test_a_read_timeout_is_ambiguous_and_sent_once(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response(json.dumps(created()), status=201, mimetype="application/json")

    httpserver.expect_request(CALLS).respond_with_handler(slow)
    result = client(httpserver, PROVIDER_READ_TIMEOUT=0.15).place_call(request_of())
    assert result.outcome is Outcome.AMBIGUOUS
    assert "read timeout" in result.detail
    wait_for_log(httpserver)
    assert len(httpserver.log) == 1


def test_nothing_listening_is_refused(closed_port_url: str) -> None:
    provider = make_provider(
        "twilio",
        {"TWILIO_API_URL": closed_port_url, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN},
    )
    result = provider.place_call(request_of())
    assert result.outcome is Outcome.REFUSED and result.may_retry
    assert "nothing sent" in result.detail


def test_an_unreadable_answer_is_ambiguous(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CALLS).respond_with_data("<html>oops</html>", status=201)
    result = client(httpserver).place_call(request_of())
    assert result.outcome is Outcome.AMBIGUOUS


def test_without_an_account_nothing_is_sent(httpserver: HTTPServer) -> None:
    result = client(httpserver, TWILIO_ACCOUNT_SID="").place_call(request_of())
    assert result.outcome is Outcome.REFUSED and result.final
    assert "GLUE_TWILIO_ACCOUNT_SID" in result.detail
    assert httpserver.log == []


def test_a_call_without_caller_id_or_twiml_is_not_sent(httpserver: HTTPServer) -> None:
    with pytest.raises(InvalidCallRequest, match="caller ID"):
        client(httpserver).place_call(call(caller_id=None, dial_url=DIAL_URL))
    with pytest.raises(InvalidCallRequest, match="dial_url"):
        client(httpserver).place_call(call())
    with pytest.raises(InvalidCallRequest, match=r"E\.164"):
        client(httpserver).place_call(call(to_number="555", dial_url=DIAL_URL))
    assert httpserver.log == []


def test_cancel_asks_twilio_to_cancel_a_ringing_call(httpserver: HTTPServer) -> None:
    path = f"/2010-04-01/Accounts/{SID}/Calls/{CALL_SID}.json"
    httpserver.expect_request(path, method="POST").respond_with_json(created("canceled"))
    result = client(httpserver).cancel(CALL_SID)
    assert result.outcome is Outcome.ACCEPTED
    assert form_of(httpserver) == {"Status": ["canceled"]}
    assert "canceled" in result.detail


def test_cancel_hangs_up_a_call_already_answered(httpserver: HTTPServer) -> None:
    path = f"/2010-04-01/Accounts/{SID}/Calls/{CALL_SID}.json"
    state = {"code": 21220, "message": "Invalid call state for this request", "status": 400}
    httpserver.expect_ordered_request(
        path, method="POST", data="Status=canceled"
    ).respond_with_json(state, status=400)
    httpserver.expect_ordered_request(
        path, method="POST", data="Status=completed"
    ).respond_with_json(created("completed"))
    result = client(httpserver).cancel(CALL_SID)
    assert result.outcome is Outcome.ACCEPTED
    assert result.sent == {"Sid": CALL_SID, "Status": "completed"}
    assert len(httpserver.log) == 2


def test_cancel_of_an_unknown_call_is_refused(httpserver: HTTPServer) -> None:
    path = f"/2010-04-01/Accounts/{SID}/Calls/{CALL_SID}.json"
    missing = {"code": 20404, "message": "The requested resource was not found", "status": 404}
    httpserver.expect_request(path, method="POST").respond_with_json(missing, status=404)
    result = client(httpserver).cancel(CALL_SID)
    assert result.outcome is Outcome.REFUSED
    assert "20404" in result.detail
