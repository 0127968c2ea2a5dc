"""Who may read /metrics: the Bearer token, or an allowed source address (behind
trusted proxies, the address they forward); nobody when neither is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.metrics.access import Access
from tests.helpers.metrics import BEARER, METRICS_TOKEN, parse


def make_app(app_config: dict[str, object], tmp_path: Path, **settings: object) -> Flask:
    return create_app({**app_config, **settings}, instance_path=str(tmp_path / "instance"))


def read(app: Flask, headers: dict[str, str] | None = None, source: str = "127.0.0.1") -> int:
    response = app.test_client().get(
        "/metrics", headers=headers or {}, environ_base={"REMOTE_ADDR": source}
    )
    if response.status_code == 403:
        assert response.data == b"Forbidden\n"  # nothing of the counts
    else:
        assert response.headers["Cache-Control"] == "no-store"
        assert "glue_jobs_pending" in {name for name, _ in parse(response.data.decode())}
    return response.status_code


def test_nobody_may_read_when_neither_token_nor_addresses_are_set(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    app = make_app(app_config, tmp_path)
    assert read(app) == 403  # not even from this host: a local proxy would let anyone in
    assert read(app, {"Authorization": "Bearer "}) == 403
    assert read(app, {"Authorization": "Bearer x"}) == 403


def test_the_token_lets_a_scraper_in_from_anywhere(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    app = make_app(app_config, tmp_path, METRICS_TOKEN=METRICS_TOKEN)
    assert read(app, BEARER, source="203.0.113.9") == 200
    assert read(app, {"Authorization": f"bearer {METRICS_TOKEN}"}, source="203.0.113.9") == 200
    for refused in (
        {},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": METRICS_TOKEN},
    ):
        assert read(app, refused, source="203.0.113.9") == 403, refused


def test_allowed_addresses_and_networks_need_no_token(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    app = make_app(app_config, tmp_path, METRICS_ALLOW="10.0.0.5, 192.168.7.0/24,2001:db8::/32")
    for source in ("10.0.0.5", "192.168.7.200", "2001:db8::1", "::ffff:10.0.0.5"):
        assert read(app, source=source) == 200, source
    for source in ("10.0.0.6", "192.168.8.1", "127.0.0.1", "2001:db9::1"):
        assert read(app, source=source) == 403, source


def test_behind_a_trusted_proxy_the_forwarded_address_counts(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    trusting = make_app(app_config, tmp_path, METRICS_ALLOW="10.0.0.5", TRUSTED_PROXIES=1)
    forwarded = {"X-Forwarded-For": "10.0.0.5"}
    assert read(trusting, forwarded, source="127.0.0.1") == 200
    assert read(trusting, {"X-Forwarded-For": "198.51.100.4"}, source="10.0.0.5") == 403
    # Without a trusted proxy, a sender cannot name its own address.
    plain = make_app(app_config, tmp_path, METRICS_ALLOW="10.0.0.5")
    assert read(plain, forwarded, source="198.51.100.4") == 403


def test_an_allow_list_entry_that_is_no_address_stops_the_start(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"GLUE_METRICS_ALLOW: 'glue\.example\.com'"):
        make_app(app_config, tmp_path, METRICS_ALLOW="10.0.0.5,glue.example.com")


@pytest.mark.parametrize(
    ("authorization", "source", "admitted"),
    [
        (f"Bearer {METRICS_TOKEN}", None, True),
        (f"Bearer  {METRICS_TOKEN} ", None, True),
        (None, "10.1.2.3", True),
        (None, "not an address", False),
        (None, None, False),
        ("Bearer", "10.9.9.9", False),
    ],
)
def test_access_rules(authorization: str | None, source: str | None, admitted: bool) -> None:
    access = Access.from_settings(METRICS_TOKEN, " 10.1.0.0/16 ,, ")
    assert access.admits(authorization, source) is admitted


def test_an_unset_token_matches_nothing() -> None:
    assert Access.from_settings("", "").admits("Bearer ", None) is False
