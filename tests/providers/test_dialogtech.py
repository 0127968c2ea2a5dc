"""DialogTech Click-to-Call against a local HTTP server, including every way
the exchange can fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.outbound.providers.base import InvalidCallRequest, Outcome
from app.outbound.providers.dialogtech import DialogTech, DialogTechSettings
from tests.helpers.providers import DroppingServer, call, wait_for_log

PATH = "/ibp_api.php"
SECRET = "s3cret/key+value"  # URL-encodes differently from itself


def client(base_url: str, **settings: Any) -> DialogTech:
    values: dict[str, Any] = {
        "base_url": base_url,
        "access_key": "access-key-1",
        "secret_access_key": SECRET,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(settings)
    return DialogTech(DialogTechSettings(**values))


def test_sends_the_documented_get_query(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="GET").respond_with_data("Call Connected")
    result = client(httpserver.url_for(PATH)).place_call(call())
    [(request, _)] = httpserver.log
    assert request.method == "GET" and request.path == PATH
    assert request.args.to_dict() == {
        "access_key": "access-key-1",
        "secret_access_key": SECRET,
        "action": "clickto.call",
        "type": "1",
        "id": "3125551212",
        "phone_to_call": "8772955100",
        "page": "glue",
        "ref": "42",
        "first_callerid": "8005551212",
        "second_callerid": "8772955100",
    }
    assert result.outcome is Outcome.CONNECTED
    assert result.sent["access_key"] == result.sent["secret_access_key"] == "***"
    assert SECRET not in repr(result)


def test_post_when_the_settings_say_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("No Answer")
    result = client(httpserver.url_for(PATH), http_method="POST").place_call(call())
    [(request, _)] = httpserver.log
    assert request.form["action"] == "clickto.call" and request.args.to_dict() == {}
    assert result.outcome is Outcome.NO_ANSWER


@pytest.mark.parametrize(
    ("body", "outcome", "detail"),
    [
        ("Call Connected", Outcome.CONNECTED, "Call Connected"),
        ("No Answer", Outcome.NO_ANSWER, "No Answer"),
        ("Phone Busy", Outcome.BUSY, "Phone Busy"),
        (
            "<response><result>failed</result><result_description>Invalid phone_to_call"
            "</result_description></response>",
            Outcome.REFUSED,
            "Invalid phone_to_call",
        ),
        ("<response><result>???</result></response>", Outcome.AMBIGUOUS, None),
    ],
)
def test_each_documented_answer(
    httpserver: HTTPServer, body: str, outcome: Outcome, detail: str | None
) -> None:
    httpserver.expect_request(PATH).respond_with_data(body)
    result = client(httpserver.url_for(PATH)).place_call(call())
    assert result.outcome is outcome
    if detail:
        assert result.detail == detail


def test_an_answer_echoing_the_secret_is_masked(httpserver: HTTPServer) -> None:
    def echo(request: Request) -> Response:
        return Response(f"Invalid key {request.args['secret_access_key']}")

    httpserver.expect_request(PATH).respond_with_handler(echo)
    result = client(httpserver.url_for(PATH)).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert SECRET not in result.raw and SECRET not in result.detail
    assert result.raw == "Invalid key ***"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_ambiguous(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected", status=status)
    result = client(httpserver.url_for(PATH)).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS
    assert str(status) in result.detail


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
def test_4xx_is_refused(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(PATH).respond_with_data("Bad request", status=status)
    result = client(httpserver.url_for(PATH)).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert str(status) in result.detail
    assert not result.final and result.may_retry


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_ambiguous(httpserver: HTTPServer, status: int) -> None:
    # The provider's server had the request: it may have placed the call before
    # redirecting, so this is never retried.
    httpserver.expect_request(PATH).respond_with_data(
        "", status=status, headers={"Location": httpserver.url_for("/elsewhere")}
    )
    result = client(httpserver.url_for(PATH)).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS and not result.may_retry
    assert f"HTTP {status}" in result.detail and "redirect not followed" in result.detail
    assert [request.path for request, _ in httpserver.log] == [PATH]


def test_an_answer_slower_than_the_read_timeout_is_ambiguous(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("Call Connected")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    started = time.monotonic()
    result = client(httpserver.url_for(PATH), read_timeout=0.2).place_call(call())
    assert time.monotonic() - started < 0.55  # gave up, did not wait for the answer
    assert result.outcome is Outcome.AMBIGUOUS
    assert "read timeout" in result.detail
    assert SECRET not in result.detail and "s3cret%2Fkey%2Bvalue" not in result.detail
    wait_for_log(httpserver)  # the handler still runs: its request is this test's
    assert len(httpserver.log) == 1  # sent once, never again


def test_a_connection_dropped_without_an_answer_is_ambiguous(
    dropping_server: Callable[[bytes], DroppingServer],
) -> None:
    server = dropping_server(b"")
    result = client(server.url).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS
    assert len(server.requests) == 1  # it was sent, once: no automatic retry
    assert b"action=clickto.call" in server.requests[0]
    assert SECRET not in result.detail and "s3cret%2Fkey%2Bvalue" not in result.detail


def test_a_connection_dropped_mid_answer_is_ambiguous(
    dropping_server: Callable[[bytes], DroppingServer],
) -> None:
    server = dropping_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nCall Conn")
    result = client(server.url).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS
    assert len(server.requests) == 1


def test_nothing_listening_is_refused(closed_port_url: str) -> None:
    result = client(closed_port_url).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert "nothing sent" in result.detail
    assert SECRET not in result.detail and "s3cret%2Fkey%2Bvalue" not in result.detail
    assert result.sent["secret_access_key"] == "***"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"page": "p" * 256}, "page"),
        ({"reference": "r" * 33}, "ref"),
        ({"connect_to": ""}, "connect_to"),
        ({"connect_to": "ext-12"}, "connect_to"),
        ({"survo_id": "1"}, "survo_id"),
        ({"voice_url": "https://glue.example.com/v.xml"}, "voice_url"),
        ({"send_digits": "1"}, "send_digits"),
    ],
)
def test_a_broken_limit_is_refused_before_anything_is_sent(
    httpserver: HTTPServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCallRequest, match=message):
        client(httpserver.url_for(PATH)).place_call(call(**changes))
    assert httpserver.log == []


def test_without_credentials_nothing_is_sent(httpserver: HTTPServer) -> None:
    result = client(httpserver.url_for(PATH), secret_access_key="").place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry  # no retry helps until it is configured
    assert "GLUE_DIALOGTECH_SECRET_ACCESS_KEY" in result.detail
    assert "GLUE_DIALOGTECH_ACCESS_KEY" not in result.detail
    assert httpserver.log == []
