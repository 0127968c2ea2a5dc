"""/metrics counts what real calls did: whole calls played through each
platform's routes, calls placed through the API to a real local HTTP server
acting as the provider, and a turn whose database fails, on SQLite and
PostgreSQL. Each test reads /metrics before and after, and checks exactly what
grew against the database's own rows."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.auth import tokens
from app.models import CallAction, CallEvent
from app.outbound import jobs
from tests.helpers.directory import add_group, add_user
from tests.helpers.journeys import SCENARIOS, Driver
from tests.helpers.metrics import METRICS_TOKEN, changes, scrape
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import ENDPOINT

# Which journey each platform plays, in turn: together they reach every
# verification outcome (the verified call clears the failed call's failures,
# so the locked journey locks on its fifth wrong PIN).
JOURNEYS = {"voipnow": "failed", "ifbyphone": "verified", "twiml": "locked", "didml": "no_input"}
ROUTES = {
    "ifbyphone": "/ifbyphone/<flow_name>",
    "voipnow": "/voipnow/<flow_name>/dial-in",
    "twiml": "/twiml/<flow_name>",
    "didml": "/didml/<flow_name>",
}


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    # One caller plays every journey: more requests than a caller may send a minute.
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN, "RATE_LIMIT_ENABLED": False}


def test_calls_on_every_platform_are_counted_by_route_platform_status_and_outcome(
    client: FlaskClient, session: Session
) -> None:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))
    session.commit()
    before = scrape(client)

    for platform, name in JOURNEYS.items():
        scenario = SCENARIOS[name]
        flow = scenario.flow
        heard = scenario.play(lambda call_id, p=platform, f=flow: Driver(client, p, f, call_id))
        assert heard == scenario.heard
    refused = client.get("/ifbyphone/verify_caller?key=wrong")
    assert refused.status_code == 403
    assert client.get("/nowhere").status_code == 404

    after = scrape(client)
    grown = changes(before, after)
    session.commit()
    events = dict(
        session.execute(select(CallEvent.platform, func.count()).group_by(CallEvent.platform)).all()
    )
    assert set(events) == set(JOURNEYS)
    expected_requests = {
        (
            "glue_http_requests_total",
            frozenset({("route", ROUTES[p]), ("platform", p), ("status", "200")}),
        ): float(events[p])
        for p in JOURNEYS
    }
    expected_requests[
        (
            "glue_http_requests_total",
            frozenset(
                {("route", ROUTES["ifbyphone"]), ("platform", "ifbyphone"), ("status", "403")}
            ),
        )
    ] = 1.0
    expected_requests[
        (
            "glue_http_requests_total",
            frozenset({("route", "none"), ("platform", "none"), ("status", "404")}),
        )
    ] = 1.0
    # The first scrape is counted once answered: the second one sees it.
    expected_requests[
        (
            "glue_http_requests_total",
            frozenset({("route", "/metrics"), ("platform", "none"), ("status", "200")}),
        )
    ] = 1.0
    assert {
        k: v for k, v in grown.items() if k[0] == "glue_http_requests_total"
    } == expected_requests

    # Every request's time was observed, under its route and platform.
    for platform in JOURNEYS:
        labels = {"route": ROUTES[platform], "platform": platform}
        observed = after.get_value("glue_http_request_duration_seconds_count", **labels)
        observed -= before.get_value("glue_http_request_duration_seconds_count", **labels)
        assert observed == events[platform] + (1 if platform == "ifbyphone" else 0)
        slowest = after.get_value("glue_http_request_duration_seconds_bucket", le="+Inf", **labels)
        assert slowest == after.get_value("glue_http_request_duration_seconds_count", **labels)

    outcomes = {
        dict(labels)["outcome"]: value
        for (name, labels), value in grown.items()
        if name == "glue_verifications_total"
    }
    assert outcomes == {"verified": 1, "failed": 2, "locked": 2, "no_input": 1}
    assert {labels for (name, labels) in grown if name == "glue_verifications_total"} == {
        frozenset({("flow", "verify_caller"), ("outcome", o)}) for o in outcomes
    }
    # Five wrong PINs locked account 1001, once; the call after it heard it locked.
    assert {k: v for k, v in grown.items() if k[0] == "glue_lockouts_total"} == {
        ("glue_lockouts_total", frozenset({("claim", "account")})): 1.0
    }
    assert not any(name.startswith("glue_fallbacks") for name, _ in grown)
    assert not any(name.startswith("glue_database_errors") for name, _ in grown)


def test_calls_placed_are_counted_by_provider_and_outcome_and_retries_wait_in_the_queue(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer
) -> None:
    jobs.huey.flush()
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    api_token = tokens.create(session, "crm")
    session.commit()
    app.config.update(
        CALL_PROVIDER="didforsale",
        DIDFORSALE_API_URL=httpserver.url_for(ENDPOINT),
        DIDFORSALE_API_KEY="dfs-key-Zq81",
        ORIGINATOR_NUMBER="+13125550199",
        PUBLIC_URL="https://glue.example.com",
    )
    auth = {"Authorization": f"Bearer {api_token}"}
    body = {"user": "1001", "target": {"kind": "user", "value": "1002"}}
    before = scrape(client)

    httpserver.expect_oneshot_request(ENDPOINT, method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-metrics-1"}
    )
    assert client.post("/api/v1/calls", json=body, headers=auth).status_code == 202
    # A clear refusal: nothing placed, tried again later (a job in the schedule).
    httpserver.expect_oneshot_request(ENDPOINT, method="POST").respond_with_data(
        "Invalid credentials", status=401
    )
    assert client.post("/api/v1/calls", json=body, headers=auth).status_code == 202

    after = scrape(client)
    session.commit()
    statuses = session.scalars(select(CallAction.status).order_by(CallAction.id)).all()
    assert statuses == ["calling", "retrying"]
    placed = {k: v for k, v in changes(before, after).items() if k[0] == "glue_calls_placed_total"}
    assert placed == {
        ("glue_calls_placed_total", frozenset({("provider", "didforsale"), ("outcome", o)})): 1.0
        for o in ("accepted", "refused")
    }
    assert after.get_value("glue_jobs_scheduled") == 1
    assert after.get_value("glue_jobs_pending") == 0
    jobs.huey.flush()


def test_a_turn_whose_database_fails_is_a_fallback_and_a_database_error(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    session.commit()
    before = scrape(client)
    # The turn's event cannot be stored: its table is away.
    with app.extensions["glue.engine"].begin() as connection:
        connection.execute(text("ALTER TABLE call_events RENAME TO call_events_away"))
    try:
        key = TEST_SECRETS["DIDML_SECRET"]
        response = client.post(
            f"/didml/verify_caller?key={key}",
            data={"CallSid": "CA-fails", "From": "+13125550101", "To": "+13125550000"},
        )
    finally:
        with app.extensions["glue.engine"].begin() as connection:
            connection.execute(text("ALTER TABLE call_events_away RENAME TO call_events"))
    assert response.status_code == 200
    said = [el.text for el in etree.fromstring(response.data).iter("Say")]
    assert said and "sorry" in " ".join(said).lower()

    after = scrape(client)
    grown = changes(before, after)
    assert {k: v for k, v in grown.items() if k[0] == "glue_fallbacks_served_total"} == {
        (
            "glue_fallbacks_served_total",
            frozenset({("platform", "didml"), ("flow", "verify_caller"), ("reason", "database")}),
        ): 1.0
    }
    errors = {k: v for k, v in grown.items() if k[0] == "glue_database_errors_total"}
    kind = (
        "programming_error"
        if app.extensions["glue.engine"].dialect.name == "postgresql"
        else "operational_error"
    )
    assert errors == {("glue_database_errors_total", frozenset({("kind", kind)})): 1.0}
