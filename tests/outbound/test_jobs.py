"""Calls placed by the real job (huey in immediate mode) against a real local HTTP
server acting as the provider (pytest-httpserver), on SQLite and PostgreSQL: what
the provider receives, how its answer becomes the action's status, what is
retried and what never is, and the status callbacks that follow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session
from werkzeug import Request, Response

from app.db import get_session
from app.models import CallAction, User
from app.outbound import jobs, service
from app.outbound.destinations import DestinationPolicy
from app.outbound.providers.base import CallRequest, CallResult
from tests.helpers.directory import add_user
from tests.helpers.settings import TEST_SECRETS

ADA_PHONE = "+13125550101"  # rung first
GRACE_PHONE = "+13125550102"  # then connected
ORIGINATOR = "+13125550199"
PUBLIC_URL = "https://glue.example.com"
RETRY_SECONDS = 30
MAX_ATTEMPTS = 3

# Each provider: its endpoint on the local server, the HTTP method it is sent
# with, and the config keys that point it there (credentials included).
PROVIDERS: dict[str, dict[str, Any]] = {
    "didforsale": {
        "path": "/didforsaleapi/index.php/api/V2/CallTermination/",
        "method": "POST",
        "url_key": "DIDFORSALE_API_URL",
        "credentials": {"DIDFORSALE_API_KEY": "dfs-key-Zq81"},
    },
    "dialogtech": {
        "path": "/ibp_api.php",
        "method": "GET",
        "url_key": "DIALOGTECH_API_URL",
        "credentials": {
            "DIALOGTECH_ACCESS_KEY": "dt-access-Kf03",
            "DIALOGTECH_SECRET_ACCESS_KEY": "dt-secret-Wm77",
        },
    },
    "ifbyphone": {
        "path": "/click_to_xyz.php",
        "method": "POST",
        "url_key": "IFBYPHONE_API_URL",
        "credentials": {"IFBYPHONE_API_KEY": "ibp-key-Hs52"},
    },
}


@pytest.fixture(autouse=True)
def empty_schedule(immediate_jobs: None) -> None:
    """No scheduled retry left over from another test (huey's in-memory storage)."""
    jobs.huey.flush()


@pytest.fixture
def ada(session: Session) -> User:
    """Ada (who places the calls) and Grace (whom she calls), each with a phone."""
    add_user(session, "1002", "Grace Hopper", "1357", GRACE_PHONE)
    return add_user(session, "1001", "Ada Lovelace", "2468", ADA_PHONE)


def use_provider(app: Flask, httpserver: HTTPServer, name: str) -> dict[str, Any]:
    """Point provider `name` at the local server; its spec."""
    spec = PROVIDERS[name]
    app.config.update(
        CALL_PROVIDER=name,
        ORIGINATOR_NUMBER=ORIGINATOR,
        PUBLIC_URL=PUBLIC_URL,
        CALL_MAX_ATTEMPTS=MAX_ATTEMPTS,
        CALL_RETRY_SECONDS=RETRY_SECONDS,
        **{spec["url_key"]: httpserver.url_for(spec["path"])},
        **spec["credentials"],
    )
    return spec


def answer(httpserver: HTTPServer, name: str, response: Response) -> None:
    """The provider gives `response` to every request."""
    spec = PROVIDERS[name]
    httpserver.expect_request(spec["path"], method=spec["method"]).respond_with_response(response)


def text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="text/plain")


def record(session: Session, app: Flask, user: User, account: str = "1002") -> int:
    """A call from `user` to the user `account`, recorded (queued) and committed."""
    target = service.resolve_target(session, "user", account, originator=ORIGINATOR, region="US")
    policy = DestinationPolicy.from_config(app.config)
    action = service.record_call(
        session, user, target, app.config["CALL_PROVIDER"], via="api", policy=policy
    )
    session.commit()
    return action.id


def run(app: Flask, session: Session, action_id: int) -> None:
    """Deliver the place_call job once; fail the test if the job itself raised."""
    session.commit()  # the test's session holds no transaction while the job writes
    with app.app_context():
        result = jobs.place_call(action_id)
        assert result is not None
        result.get()  # re-raises (TaskException) whatever the task raised


def action_of(session: Session, action_id: int) -> CallAction:
    session.commit()  # see what the job wrote
    action = session.get(CallAction, action_id)
    assert action is not None
    return action


def received(httpserver: HTTPServer) -> list[dict[str, str]]:
    """The parameters of each request the provider got (query or form)."""
    return [_params(request) for request, _ in httpserver.log]


def _params(request: Request) -> dict[str, str]:
    if request.method == "GET":
        return request.args.to_dict(flat=True)
    assert not request.args, "a POST keeps every parameter (credentials too) out of the URL"
    return request.form.to_dict(flat=True)


def secrets_of(spec: dict[str, Any]) -> list[str]:
    return [*spec["credentials"].values(), TEST_SECRETS["DIDML_SECRET"]]


def stored_text(action: CallAction) -> str:
    """Everything the row keeps that came from the exchange, as one string."""
    return json.dumps(
        [action.params_sent, action.provider_answer, action.detail, action.provider_call_ids]
    )


def utcnow() -> datetime:
    """Now as huey writes its etas: naive UTC (utc=True)."""
    return datetime.now(UTC).replace(tzinfo=None)


def scheduled_delays() -> list[tuple[tuple[Any, ...], float]]:
    """The retries waiting in huey's schedule: (args, seconds from now)."""
    now = utcnow()
    return [(tuple(task.args), (task.eta - now).total_seconds()) for task in jobs.huey.scheduled()]


def run_scheduled(app: Flask, session: Session) -> None:
    """Take the one scheduled retry off the schedule and deliver it, as the
    consumer would once its eta has passed."""
    due = jobs.huey.read_schedule(utcnow() + timedelta(days=1))
    assert len(due) == 1
    run(app, session, *due[0].args)


# --- what the provider receives --------------------------------------------------


def test_didforsale_receives_the_call_and_secrets_are_never_stored(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "didforsale")
    httpserver.expect_request(spec["path"], method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-dfs-1"}
    )
    action_id = record(session, app, ada)

    run(app, session, action_id)

    assert received(httpserver) == [
        {
            "apikey": "dfs-key-Zq81",
            "to": "13125550101",  # Ada's phone rings first
            "from": "13125550102",  # without a voice URL, the call connects to `from`
            "statusCallback": f"{PUBLIC_URL}/didml/status?action={action_id}",
            "statusCallbackEvent": "initiated ringing answered completed",
            "statusCallbackMethod": "POST",
            "secretKey": TEST_SECRETS["DIDML_SECRET"],
            "optional": str(action_id),
        }
    ]
    action = action_of(session, action_id)
    assert action.status == "calling"  # accepted: status callbacks tell the rest
    assert action.attempts == 1
    assert action.provider_call_ids == ["CA-dfs-1"]
    assert json.loads(action.provider_answer or "") == {
        "status": "success",
        "callSid": "CA-dfs-1",
    }
    assert action.params_sent == {
        **received(httpserver)[0],
        "apikey": "***",
        "secretKey": "***",
    }
    for secret in secrets_of(spec):
        assert secret not in stored_text(action)
    assert scheduled_delays() == []


def test_dialogtech_receives_the_call_and_secrets_are_never_stored(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "dialogtech")
    answer(httpserver, "dialogtech", text("Call Connected"))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    assert received(httpserver) == [
        {
            "access_key": "dt-access-Kf03",
            "secret_access_key": "dt-secret-Wm77",
            "action": "clickto.call",
            "type": "1",  # ring phone_to_call (Ada) first, then id (Grace)
            "id": "3125550102",
            "phone_to_call": "3125550101",
            "page": "glue",
            "ref": str(action_id),
            "first_callerid": "3125550199",  # the Originator's number
            "second_callerid": "3125550101",  # Grace sees who is on the line
        }
    ]
    action = action_of(session, action_id)
    assert action.params_sent == {
        **received(httpserver)[0],
        "access_key": "***",
        "secret_access_key": "***",
    }
    assert action.provider_answer == "Call Connected"
    for secret in secrets_of(spec):
        assert secret not in stored_text(action)


def test_ifbyphone_receives_the_call_with_its_key_masked(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "ifbyphone")
    answer(httpserver, "ifbyphone", text("Call Connected"))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    assert received(httpserver) == [
        {
            "app": "ctc",
            "key": "ibp-key-Hs52",
            "type": "1",
            "id": "3125550102",
            "phone_to_call": "3125550101",
            "page": "glue",
            "ref": str(action_id),
            "first_callerid": "3125550199",
            "second_callerid": "3125550101",
        }
    ]
    action = action_of(session, action_id)
    assert action.params_sent == {**received(httpserver)[0], "key": "***"}
    for secret in secrets_of(spec):
        assert secret not in stored_text(action)


# --- how answers become statuses ---------------------------------------------------


@pytest.mark.parametrize("provider", ["dialogtech", "ifbyphone"])
@pytest.mark.parametrize(
    ("body", "status"),
    [("Call Connected", "connected"), ("No Answer", "no_answer"), ("Phone Busy", "busy")],
)
def test_a_plain_text_answer_is_the_actions_final_status(
    app: Flask,
    session: Session,
    httpserver: HTTPServer,
    ada: User,
    provider: str,
    body: str,
    status: str,
) -> None:
    use_provider(app, httpserver, provider)
    answer(httpserver, provider, text(f"{body}\n"))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == (status, 1)
    assert action.provider_answer == f"{body}\n"
    assert action.detail == body
    assert service.action_view(action)["final"] is True
    assert len(httpserver.log) == 1
    assert scheduled_delays() == []


@pytest.mark.parametrize("provider", ["didforsale", "dialogtech"])
def test_a_5xx_is_unknown_and_never_retried(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User, provider: str
) -> None:
    use_provider(app, httpserver, provider)
    answer(httpserver, provider, text("upstream exploded", status=502))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    # Maybe placed, maybe not: "unknown", which only DIDforSale's callbacks may still settle.
    assert (action.status, action.attempts) == ("unknown", 1)
    assert service.action_view(action)["final"] is (provider != "didforsale")
    assert action.detail is not None
    assert "not retried" in action.detail and "HTTP 502" in action.detail
    assert action.provider_answer == "upstream exploded"
    assert len(httpserver.log) == 1  # it may have rung someone: sent once only
    assert scheduled_delays() == []


@pytest.mark.parametrize("provider", ["didforsale", "dialogtech"])
def test_a_4xx_refusal_is_retried_with_backoff_then_fails(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User, provider: str
) -> None:
    use_provider(app, httpserver, provider)
    answer(httpserver, provider, text("Invalid credentials", status=401))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("retrying", 1)
    assert action.detail is not None and "HTTP 401" in action.detail
    assert service.action_view(action)["final"] is False
    [(args, delay)] = scheduled_delays()
    assert args == (action_id,)
    assert RETRY_SECONDS - 5 < delay <= RETRY_SECONDS

    run_scheduled(app, session)  # the second attempt, refused again: twice the wait

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("retrying", 2)
    [(args, delay)] = scheduled_delays()
    assert args == (action_id,)
    assert 2 * RETRY_SECONDS - 5 < delay <= 2 * RETRY_SECONDS

    run_scheduled(app, session)  # the last attempt allowed

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("failed", MAX_ATTEMPTS)
    assert action.detail is not None and "HTTP 401" in action.detail
    assert scheduled_delays() == []
    assert len(httpserver.log) == MAX_ATTEMPTS


def test_a_second_delivery_of_the_job_does_nothing(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "didforsale")
    httpserver.expect_request(spec["path"], method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-dfs-2"}
    )
    action_id = record(session, app, ada)
    run(app, session, action_id)
    before = action_of(session, action_id)
    seen = (before.status, before.attempts, before.updated_at, before.params_sent)

    run(app, session, action_id)  # the same job, delivered again

    after = action_of(session, action_id)
    assert (after.status, after.attempts, after.updated_at, after.params_sent) == seen
    assert len(httpserver.log) == 1
    assert scheduled_delays() == []


def test_a_job_for_a_final_action_sends_nothing(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    use_provider(app, httpserver, "dialogtech")
    answer(httpserver, "dialogtech", text("No Answer"))
    action_id = record(session, app, ada)
    run(app, session, action_id)

    run(app, session, action_id)
    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("no_answer", 1)
    assert len(httpserver.log) == 1


def test_an_invalid_request_fails_without_anything_sent(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    # The job always sends page "glue", so no page over DialogTech's 255
    # characters can be asked for; a caller ID that is no valid number breaks
    # the same check (first_callerid), before anything is sent.
    use_provider(app, httpserver, "dialogtech")
    app.config["ORIGINATOR_NUMBER"] = "+1555"
    answer(httpserver, "dialogtech", text("Call Connected"))
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("failed", 1)
    assert action.detail is not None and action.detail.startswith("not sent:")
    assert "caller_id" in action.detail
    assert action.params_sent is None and action.provider_answer is None
    assert httpserver.log == []
    assert scheduled_delays() == []


def test_a_provider_without_credentials_fails_without_sending_or_retrying(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    use_provider(app, httpserver, "didforsale")
    app.config["DIDFORSALE_API_KEY"] = ""
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("failed", 1)
    assert action.detail is not None and "GLUE_DIDFORSALE_API_KEY" in action.detail
    assert httpserver.log == []
    assert scheduled_delays() == []  # retrying cannot fix a missing setting


def test_a_misconfigured_provider_fails_the_action_rather_than_leaving_it_queued(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    use_provider(app, httpserver, "didforsale")
    app.config["DIDFORSALE_NUMBER_FORMAT"] = "dotted"  # not e164, digits or unformatted
    action_id = record(session, app, ada)

    run(app, session, action_id)

    action = action_of(session, action_id)
    assert (action.status, action.attempts) == ("failed", 0)
    assert action.detail is not None
    assert "not usable" in action.detail and "number format" in action.detail
    assert httpserver.log == []
    assert scheduled_delays() == []


# --- status callbacks --------------------------------------------------------------


def test_status_callbacks_move_the_action_forward_and_never_back(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "didforsale")
    httpserver.expect_request(spec["path"], method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-dfs-3"}
    )
    action_id = record(session, app, ada)
    run(app, session, action_id)
    [sent] = received(httpserver)
    assert action_of(session, action_id).status == "calling"

    def callback(status: str, **auth: str) -> None:
        fields = {
            "callSid": "CA-dfs-3",
            "CallStatus": status,
            "ParentCallSid": "",
            "Direction": "Outbound",
            "CallbackSource": "call-progress-event",
            "optional": sent["optional"],
            **auth,
        }
        query = {"action": str(action_id)}
        if not auth:
            query["key"] = TEST_SECRETS["DIDML_SECRET"]
        response = client.post("/didml/status", query_string=query, data=fields)
        assert response.status_code == 204

    callback("ringing")
    assert action_of(session, action_id).status == "ringing"
    callback("answered")
    assert action_of(session, action_id).status == "connected"
    # DIDforSale sends the secretKey it was given back as `apikey`.
    callback("completed", apikey=sent["secretKey"])
    assert action_of(session, action_id).status == "completed"
    callback("ringing")  # late (a repeated delivery): kept once, moves nothing
    callback("initiated")  # late and new: kept, moves nothing
    action = action_of(session, action_id)
    assert action.status == "completed"

    view = service.action_view(action)
    assert view["final"] is True
    assert [entry["status"] for entry in view["statuses"]] == [
        "ringing",
        "answered",
        "completed",
        "initiated",
    ]
    assert [call.platform_call_id for call in action.calls] == ["CA-dfs-3"]


def test_a_didforsale_call_that_is_connected_is_not_yet_final(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    spec = use_provider(app, httpserver, "didforsale")
    httpserver.expect_request(spec["path"], method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-dfs-4"}
    )
    action_id = record(session, app, ada)
    run(app, session, action_id)
    query = {"action": str(action_id), "key": TEST_SECRETS["DIDML_SECRET"]}
    fields = {"callSid": "CA-dfs-4", "CallStatus": "answered"}
    assert client.post("/didml/status", query_string=query, data=fields).status_code == 204

    action = action_of(session, action_id)
    assert action.status == "connected"
    assert service.action_view(action)["final"] is False  # `completed` is still to come


def _didforsale_call(
    app: Flask,
    client: FlaskClient,
    session: Session,
    httpserver: HTTPServer,
    ada: User,
    status: int = 200,
) -> tuple[int, Any]:
    """A DIDforSale call placed (or not: `status`), and a way to post its callbacks."""
    spec = use_provider(app, httpserver, "didforsale")
    if status == 200:
        httpserver.expect_request(spec["path"], method="POST").respond_with_json(
            {"status": "success", "callSid": "CA-map"}
        )
    else:
        answer(httpserver, "didforsale", text("upstream exploded", status=status))
    action_id = record(session, app, ada)
    run(app, session, action_id)

    def callback(status: str, leg: str = "", **extra: str) -> None:
        fields = {
            "callSid": "CA-map" if not leg else "CA-leg",
            "CallStatus": status,
            "ParentCallSid": leg,
            **extra,
        }
        query = {"action": str(action_id), "key": TEST_SECRETS["DIDML_SECRET"]}
        assert client.post("/didml/status", query_string=query, data=fields).status_code == 204

    return action_id, callback


def test_a_call_that_ends_without_being_answered_is_no_answer(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    action_id, callback = _didforsale_call(app, client, session, httpserver, ada)
    callback("ringing")
    callback("completed", CallDuration="0")
    action = action_of(session, action_id)
    assert action.status == "no_answer" and service.action_view(action)["final"]


def test_the_person_called_being_busy_is_busy(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    action_id, callback = _didforsale_call(app, client, session, httpserver, ada)
    callback("answered")
    callback("ringing", leg="CA-map")  # the second leg's progress does not matter
    assert action_of(session, action_id).status == "connected"
    callback("busy", leg="CA-map")
    assert action_of(session, action_id).status == "busy"


def test_an_ambiguous_answer_can_still_be_settled_by_callbacks(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    action_id, callback = _didforsale_call(app, client, session, httpserver, ada, status=504)
    assert action_of(session, action_id).status == "unknown"
    callback("answered")
    assert action_of(session, action_id).status == "connected"


def test_an_unexpected_error_while_placing_is_unknown_never_queued(
    app: Flask, session: Session, ada: User
) -> None:
    class Exploding:
        name = "exploding"

        def place_call(self, request: CallRequest) -> CallResult:
            raise RuntimeError("boom")

        def close(self) -> None:
            pass

    action_id = record(session, app, ada)
    with app.app_context(), pytest.raises(RuntimeError):
        service.place(
            get_session(),
            action_id,
            Exploding(),
            lambda a: CallRequest(to_number=a.from_number),
            3,
            policy=DestinationPolicy.from_config(app.config),
        )
    action = action_of(session, action_id)
    assert (action.status, action.detail) == ("unknown", "error while placing: RuntimeError")
