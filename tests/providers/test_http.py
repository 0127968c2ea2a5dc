"""The shared exchange: which transport failures mean "nothing was sent"."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
import requests
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)

from app.outbound.providers._http import classify
from app.outbound.providers.base import CallResult, Outcome
from app.outbound.providers.didforsale import DIDforSale, DIDforSaleSettings
from tests.helpers.providers import call


def _wrapped(reason: Exception) -> MaxRetryError:
    return MaxRetryError(None, "/api", reason)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), Outcome.REFUSED),
        (requests.exceptions.InvalidURL("bad"), Outcome.REFUSED),
        (requests.exceptions.MissingSchema("no scheme"), Outcome.REFUSED),
        (
            requests.exceptions.ConnectionError(
                _wrapped(NewConnectionError(None, "refused"))  # type: ignore[arg-type]
            ),
            Outcome.REFUSED,
        ),
        (
            requests.exceptions.ConnectionError(
                _wrapped(NameResolutionError("h", None, socket.gaierror()))  # type: ignore[arg-type]
            ),
            Outcome.REFUSED,
        ),
        (
            requests.exceptions.SSLError(
                _wrapped(SSLError(ssl.SSLCertVerificationError("certificate verify failed")))
            ),
            Outcome.REFUSED,
        ),
        (requests.exceptions.ReadTimeout("read timed out"), Outcome.AMBIGUOUS),
        (
            requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError())
            ),
            Outcome.AMBIGUOUS,
        ),
        (requests.exceptions.SSLError(_wrapped(SSLError("bad record mac"))), Outcome.AMBIGUOUS),
        (requests.exceptions.ChunkedEncodingError("truncated"), Outcome.AMBIGUOUS),
        (requests.exceptions.ContentDecodingError("gzip"), Outcome.AMBIGUOUS),
        (requests.exceptions.RequestException("anything else"), Outcome.AMBIGUOUS),
    ],
)
def test_classify(exc: requests.RequestException, outcome: Outcome) -> None:
    assert classify(exc)[0] is outcome


def test_a_dns_failure_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    settings = DIDforSaleSettings(base_url="https://api.provider.invalid/call", api_key="k-123")
    result = DIDforSale(settings).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert "nothing sent" in result.detail and "k-123" not in result.detail


def test_only_a_refusal_may_be_retried() -> None:
    assert CallResult(Outcome.REFUSED, "").may_retry
    for outcome in set(Outcome) - {Outcome.REFUSED}:
        assert not CallResult(outcome, "").may_retry
        assert not CallResult(outcome, "", final=True).may_retry


def test_a_final_refusal_may_not_be_retried() -> None:
    result = CallResult(Outcome.REFUSED, "not configured", final=True)
    assert result.outcome is Outcome.REFUSED and not result.may_retry
    assert CallResult(Outcome.REFUSED, "").final is False  # a refusal is retryable by default


def test_a_transport_refusal_is_not_final(closed_port_url: str) -> None:
    settings = DIDforSaleSettings(base_url=closed_port_url, api_key="k-1", connect_timeout=2.0)
    result = DIDforSale(settings).place_call(call())
    assert result.outcome is Outcome.REFUSED and not result.final and result.may_retry


def test_outcomes_compare_as_their_names() -> None:
    assert Outcome.NO_ANSWER == "no_answer"
    assert {"accepted": 1}[Outcome.ACCEPTED] == 1


def test_scrub_masks_the_longer_secret_first() -> None:
    provider = DIDforSale(DIDforSaleSettings(api_key="abc", callback_secret="xabcx/y"))
    params = {"apikey": "abc", "secretKey": "xabcx/y"}
    assert provider.scrub("k=xabcx%2Fy and xabcx/y and abc", params) == "k=*** and *** and ***"


def test_an_unexpected_failure_is_ambiguous_never_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = DIDforSale(DIDforSaleSettings(base_url="http://127.0.0.1:9/call", api_key="k-1"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("k-1 went wrong")

    monkeypatch.setattr(provider.session, "request", broken)
    result = provider.place_call(call())
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.detail == "unexpected failure: RuntimeError"
