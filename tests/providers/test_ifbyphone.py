"""IfbyPhone Click-to-Call and Click-to-SurVo against a local HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer

from app.outbound.providers.base import InvalidCallRequest, Outcome
from app.outbound.providers.ifbyphone import IfbyPhone, IfbyPhoneSettings
from tests.helpers.providers import call

PATH = "/click_to_xyz.php"


def client(httpserver: HTTPServer, **settings: Any) -> IfbyPhone:
    values: dict[str, Any] = {
        "base_url": httpserver.url_for(PATH),
        "key": "public-key-123",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(settings)
    return IfbyPhone(IfbyPhoneSettings(**values))


def test_click_to_call_sends_every_documented_field(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("Call Connected")
    result = client(httpserver).place_call(call())
    [(request, _)] = httpserver.log
    assert request.method == "POST" and request.path == PATH
    assert request.args.to_dict() == {}  # nothing in the URL: the key stays out of logs
    assert request.form.to_dict() == {
        "app": "ctc",
        "key": "public-key-123",
        "type": "1",  # phone_to_call first: the user
        "id": "3125551212",
        "phone_to_call": "8772955100",
        "page": "glue",
        "ref": "42",
        "first_callerid": "8005551212",
        "second_callerid": "8772955100",
    }
    assert result.outcome is Outcome.CONNECTED
    assert result.detail == "Call Connected" and result.raw == "Call Connected"
    assert result.provider_call_ids == ()
    assert result.sent["key"] == "***"
    assert result.sent["phone_to_call"] == "8772955100"


def test_optional_fields_left_unset_are_not_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("No Answer")
    client(httpserver).place_call(call(caller_id=None, page=None, reference=None))
    [(request, _)] = httpserver.log
    assert set(request.form) == {"app", "key", "type", "id", "phone_to_call", "second_callerid"}


def test_default_caller_id_from_the_settings(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected")
    client(httpserver, caller_id="+14155550100").place_call(call(caller_id=None))
    [(request, _)] = httpserver.log
    assert request.form["first_callerid"] == "4155550100"


def test_international_numbers_keep_their_country_code(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected")
    client(httpserver).place_call(call(connect_to="+442071234567"))
    [(request, _)] = httpserver.log
    assert request.form["id"] == "442071234567"


@pytest.mark.parametrize(
    ("settings", "sent"),
    [
        (
            {"key": "", "access_key": "access-AK-1", "secret_access_key": "secret-SAK-2"},
            {"access_key": "access-AK-1", "secret_access_key": "secret-SAK-2"},
        ),
        (
            {"key": "", "account": "1001", "password": "pass-word-3"},
            {"acct": "1001", "pwd": "pass-word-3"},
        ),
        (  # the key wins over the other styles
            {"key": "key-K-4", "account": "1001", "password": "pass-word-3"},
            {"key": "key-K-4"},
        ),
    ],
)
def test_each_credential_style_is_sent_and_masked(
    httpserver: HTTPServer, settings: dict[str, str], sent: dict[str, str]
) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected")
    result = client(httpserver, **settings).place_call(call())
    [(request, _)] = httpserver.log
    credentials = {k: v for k, v in request.form.items() if k in {"key", "acct", "pwd"} | {*sent}}
    assert credentials == sent
    for name, value in sent.items():
        assert result.sent[name] == (value if name == "acct" else "***")
        assert value == "1001" or value not in repr(result)


def test_click_to_survo_sends_its_fields_url_encoded(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("Call Connected")
    request_ = call(
        connect_to=None,
        survo_id="1234",
        user_parameters={"pin": "8, 9, 7, 0", "name": "Ann & Bo"},
        pass_through={"user": "42", "attempt": "1"},
    )
    result = client(httpserver).place_call(request_)
    [(request, _)] = httpserver.log
    assert request.form.to_dict() == {
        "app": "cts",
        "key": "public-key-123",
        "survo_id": "1234",
        "phone_to_call": "8772955100",
        "user_parameters": "pin|8, 9, 7, 0||name|Ann & Bo",
        "p_t": "user|42||attempt|1",
        "first_callerid": "8005551212",
        "page": "glue",
        "ref": "42",
    }
    body = request.get_data(as_text=True)
    assert "user_parameters=pin%7C8%2C+9%2C+7%2C+0%7C%7Cname%7CAnn+%26+Bo" in body
    assert dict(parse_qsl(body))["p_t"] == "user|42||attempt|1"
    assert result.outcome is Outcome.CONNECTED


def test_a_secret_pass_through_value_is_sent_and_kept_nowhere(httpserver: HTTPServer) -> None:
    token = "tok-Zq7yW2-signed"
    # An answer that echoes what it was sent keeps nothing of the token either.
    httpserver.expect_request(PATH).respond_with_data(f"Invalid survo_id for p_t=sig|{token}")
    request_ = call(
        connect_to=None,
        survo_id="9",
        pass_through={"action": "42", "sig": token},
        secret_pass_through=frozenset({"sig"}),
    )
    result = client(httpserver).place_call(request_)
    [(request, _)] = httpserver.log
    assert request.form["p_t"] == f"action|42||sig|{token}"
    assert result.sent["p_t"] == "action|42||sig|***"
    assert result.raw == "Invalid survo_id for p_t=sig|***"
    assert token not in repr(result)
    unset = client(httpserver, key="").place_call(request_)  # refused unsent
    assert unset.sent["p_t"] == "action|42||sig|***"


def test_click_to_survo_takes_a_ready_made_pass_through(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected")
    client(httpserver).place_call(call(connect_to=None, survo_id="9", pass_through="a|1"))
    [(request, _)] = httpserver.log
    assert request.form["p_t"] == "a|1" and "user_parameters" not in request.form


def test_get_puts_the_fields_in_the_query(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="GET").respond_with_data("Call Connected")
    result = client(httpserver, http_method="GET").place_call(call())
    [(request, _)] = httpserver.log
    assert request.method == "GET" and request.args["app"] == "ctc"
    assert result.outcome is Outcome.CONNECTED


@pytest.mark.parametrize(
    ("body", "outcome", "detail"),
    [
        ("Call Connected", Outcome.CONNECTED, "Call Connected"),
        ("Call Connected\r\n", Outcome.CONNECTED, "Call Connected"),
        ("No Answer", Outcome.NO_ANSWER, "No Answer"),
        ("Phone Busy", Outcome.BUSY, "Phone Busy"),
        (
            "Missing Application Specification",
            Outcome.REFUSED,
            "Missing Application Specification",
        ),
        ("Invalid Key", Outcome.REFUSED, "Invalid Key"),
        (
            "<?xml version='1.0'?><response><result>failed</result>"
            "<result_description>Invalid access key</result_description></response>",
            Outcome.REFUSED,
            "Invalid access key",
        ),
        ("Something nobody documented", Outcome.AMBIGUOUS, None),
        ("", Outcome.AMBIGUOUS, "empty answer"),
        ("<html><body>Maintenance</body></html>", Outcome.AMBIGUOUS, None),
    ],
)
def test_each_documented_answer(
    httpserver: HTTPServer, body: str, outcome: Outcome, detail: str | None
) -> None:
    httpserver.expect_request(PATH).respond_with_data(body)
    result = client(httpserver).place_call(call())
    assert result.outcome is outcome
    if detail is not None:
        assert result.detail == detail
    assert result.raw == body


def test_xml_answer_entities_are_not_expanded(httpserver: HTTPServer) -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<response><result>failed</result><result_description>&x;</result_description>"
        "</response>"
    )
    httpserver.expect_request(PATH).respond_with_data(body)
    result = client(httpserver).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert "root:" not in result.detail


def test_long_answers_are_cut_in_raw(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("x" * 5000)
    result = client(httpserver).place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS and len(result.raw) == 2000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"page": "p" * 256}, "page"),
        ({"reference": "r" * 33}, "ref"),
        ({"to_number": "3125551212"}, "to_number"),
        ({"to_number": "+1555"}, "to_number"),
        ({"caller_id": "8005551212"}, "caller_id"),
        ({"connect_to": None}, "connect_to"),
        ({"voice_url": "https://glue.example.com/v.xml"}, "voice_url"),
        ({"at": datetime.now(UTC) + timedelta(hours=1)}, "at"),
        ({"send_digits": "123"}, "send_digits"),
        ({"user_parameters": {"pin": "1"}}, "user_parameters"),
        ({"connect_to": None, "survo_id": "1", "user_parameters": {"a|b": "1"}}, "'|'"),
        ({"connect_to": None, "survo_id": "1", "user_parameters": {"a": "1|2"}}, "'|'"),
        ({"connect_to": None, "survo_id": "1", "pass_through": {"": "x"}}, "pass_through"),
        ({"survo_id": "1"}, "connect_to"),  # a survey has no second party
        ({"connect_to": None, "survo_id": "1", "page": "p" * 256}, "page"),
    ],
)
def test_a_broken_limit_is_refused_before_anything_is_sent(
    httpserver: HTTPServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCallRequest, match=message):
        client(httpserver).place_call(call(**changes))
    assert httpserver.log == []


def test_limits_themselves_are_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Call Connected")
    result = client(httpserver).place_call(call(page="p" * 255, reference="r" * 32))
    assert result.outcome is Outcome.CONNECTED


def test_without_credentials_nothing_is_sent(httpserver: HTTPServer) -> None:
    result = client(httpserver, key="").place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry
    assert "GLUE_IFBYPHONE_API_KEY" in result.detail
    assert httpserver.log == []


def test_settings_refuse_a_bad_method_or_caller_id() -> None:
    with pytest.raises(ValueError, match="GET or POST"):
        IfbyPhoneSettings(http_method="PUT")
    with pytest.raises(ValueError, match="caller ID"):
        IfbyPhoneSettings(caller_id="555")
    with pytest.raises(ValueError, match="http"):
        IfbyPhoneSettings(base_url="ftp://example.com/x")
