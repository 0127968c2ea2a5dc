"""The bound: each benched step's database work written by hand, and nothing else.

What any implementation of a step must do at the least, on the floor's stack
(Flask, the same gunicorn settings), with raw driver calls (sqlite3, psycopg),
one connection per worker, in one transaction per request; SQLite writers take
turns on an flock, as Glue's do. Each route stores the rows Glue's step stores
(tests/test_bench_bound.py compares them):

- the IfbyPhone verification step: store the call, read the user and its
  phones, check the PIN's keyed hash, store the attempt, update the call, store
  the event, answer fixed SurVo XML;
- the didML Gather step (the answer to the account question): lock the call and
  read its state, store the answer in it and ask for the PIN, update the call,
  store the event with its reply;
- the didML status callback: store or lock the call, read the call's stored
  reports when the status needs them (a `completed` or `answered`: DIDforSale
  ends an unanswered call with `completed`), update the call, store the event.

None of Glue's guarantees are here: no delivery key (a retried delivery is
stored twice), no rate limits, lockout, request ids, security headers, flows or
dialects, no validation of what is sent, and fixed field names are all the
masking (the PIN is never stored). It is a yardstick for the bench, never a way
to answer calls:
`GLUE_DATABASE_URL=... gunicorn -c bench/gunicorn_bench.conf.py bench.bound:app`.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from flask import Flask, Response, abort, request

from app.directory.pins import PinHasher

URL = os.environ["GLUE_DATABASE_URL"]
SQLITE = URL.startswith("sqlite:")
SECRET = os.environ["GLUE_IFBYPHONE_SECRET"]
DIDML_SECRET = os.environ["GLUE_DIDML_SECRET"]
HASHER = PinHasher(os.environ["GLUE_PIN_SECRET"])
REPLY = (
    "<?xml version='1.0' encoding='utf-8'?>\n<action><app>survo</app><parameters>"
    "<id>{survo}</id><user_parameters><p_t>turn=1</p_t></user_parameters></parameters>"
    "</action>"
)
# The reply to the account answer: the PIN question, as verify_caller.yaml asks it.
ASK_PIN = (
    "<?xml version='1.0' encoding='utf-8'?>\n<Response><Gather tries=\"1\""
    ' action="{url}?key={key}&amp;turn={turn}&amp;question=pin" method="POST"'
    ' timeout="5" finishOnKey="#" numDigits="8" minDigits="4"><Say>Please enter your'
    ' PIN, then press pound.</Say></Gather><Redirect method="POST">{url}?key={key}'
    "&amp;turn={turn}&amp;question=pin&amp;silence=1</Redirect></Response>"
)
# DIDforSale's statuses, as far as a call's row keeps them.
RANK = {"initiated": 1, "ringing": 2, "answered": 3, "completed": 4, "busy": 4, "no-answer": 4}
ANSWERED = "answered"

# The statements, in the driver's own parameter style (qmark or format).
P = "?" if SQLITE else "%s"
NEW_CALL = (
    "INSERT INTO calls (platform, platform_call_id, caller_number, flow, status, state,"
    f" started_at, updated_at) VALUES ({', '.join([P] * 8)}) RETURNING id"
)
# A call's row, made on its first request and locked until the request commits.
LOCK_CALL = (
    "INSERT INTO calls (platform, platform_call_id, caller_number, flow, status, state,"
    f" started_at, updated_at) VALUES ({', '.join([P] * 8)})"
    " ON CONFLICT (platform, platform_call_id) DO UPDATE SET platform = excluded.platform"
    " RETURNING id, state, platform_status, flow"
)
FIND_USER = (
    "SELECT users.id, users.pin_hash, users.active, phone_numbers.e164 FROM users"
    " LEFT OUTER JOIN phone_numbers ON phone_numbers.user_id = users.id"
    f" WHERE users.account_number = {P} ORDER BY phone_numbers.id"
)
STORE_ATTEMPT = (
    "INSERT INTO verification_attempts (call_id, claim_type, claimed, user_id, outcome,"
    f" reason, created_at) VALUES ({', '.join([P] * 7)})"
)
UPDATE_CALL = f"UPDATE calls SET outcome = {P}, state = {P}, updated_at = {P} WHERE id = {P}"
UPDATE_ASKED = f"UPDATE calls SET reached = {P}, state = {P}, updated_at = {P} WHERE id = {P}"
UPDATE_STATUS = (
    f"UPDATE calls SET platform_status = {P}, duration_seconds = COALESCE({P}, duration_seconds),"
    f" updated_at = {P},"
    f" status = COALESCE({P}, status), ended_at = COALESCE(ended_at, {P}) WHERE id = {P}"
)
STORED_STATUSES = f"SELECT outcome FROM call_events WHERE call_id = {P} AND kind = 'status'"
STORE_EVENT = (
    "INSERT INTO call_events (call_id, platform, kind, dedupe_key, request_id, payload,"
    f" outcome, reply, received_at) VALUES ({', '.join([P] * 9)})"
)

app = Flask(__name__)
_opened: tuple[Any, int] | None = None


def connection() -> tuple[Any, int]:
    """This worker's connection and, on SQLite, its turn file (-1 on PostgreSQL),
    opened on first use: after gunicorn forks."""
    global _opened
    if _opened is None:
        if SQLITE:
            import sqlite3

            path = URL.removeprefix("sqlite:///")
            db = sqlite3.connect(path, isolation_level=None, timeout=5)
            db.execute("PRAGMA synchronous = NORMAL")
            turns = os.open(f"{os.path.realpath(path)}-bound-writers", os.O_RDWR | os.O_CREAT)
            _opened = (db, turns)
        else:
            import psycopg

            _opened = (psycopg.connect(URL.replace("postgresql+psycopg:", "postgresql:")), -1)
    return _opened


@contextmanager
def transaction() -> Iterator[Any]:
    """A cursor in a write transaction, committed if the block returns."""
    db, turns = connection()
    if SQLITE:
        fcntl.flock(turns, fcntl.LOCK_EX)
        db.execute("BEGIN IMMEDIATE")
    cursor = db.cursor()
    try:
        yield cursor
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        cursor.close()
        if SQLITE:
            fcntl.flock(turns, fcntl.LOCK_UN)


def now() -> Any:
    """Naive UTC, as Glue stores it; on SQLite in SQLAlchemy's text format."""
    moment = datetime.now(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if SQLITE else moment


def check_key(secret: str) -> None:
    if not hmac.compare_digest(request.args.get("key", ""), secret):
        abort(403)


def stored_event(
    call_id: int, platform: str, kind: str, payload: dict[str, str]
) -> tuple[Any, ...]:
    """The event's first columns; a random key stands in for the delivery key."""
    return (call_id, platform, kind, os.urandom(16).hex(), "-", json.dumps(payload))


@app.post("/ifbyphone/<flow>")
def verify(flow: str) -> Response:
    form = request.form
    check_key(SECRET)
    at = now()
    with transaction() as cursor:
        call_id = cursor.execute(
            NEW_CALL,
            ("ifbyphone", form["session_id"], form["caller_id"], flow, "active", "{}", at, at),
        ).fetchone()[0]
        rows = cursor.execute(FIND_USER, (form["account"],)).fetchall()
        verified = bool(rows) and rows[0][2] and HASHER.verify(form["pin"], rows[0][1])
        outcome, reason = ("verified", "pin") if verified else ("rejected", "wrong_pin")
        user_id = rows[0][0] if rows else None
        attempt = (call_id, "account", form["account"], user_id, outcome, reason, at)
        cursor.execute(STORE_ATTEMPT, attempt)
        reply = REPLY.format(survo=1)
        cursor.execute(UPDATE_CALL, (outcome, json.dumps({"turn": 1}), at, call_id))
        event = stored_event(call_id, "ifbyphone", "turn", form.to_dict() | {"pin": "***"})
        cursor.execute(STORE_EVENT, (*event, outcome, reply, at))
    return Response(reply, content_type="text/xml; charset=utf-8")


@app.post("/didml/<flow>")
def gather(flow: str) -> Response:
    """The answer to a call's account question: the call asks for the PIN next."""
    check_key(DIDML_SECRET)
    form, question = request.form, request.args["question"]
    at = now()
    with transaction() as cursor:
        call = ("didml", form["callSid"], form["From"], flow, "active", "{}", at, at)
        call_id, state, _, _ = cursor.execute(LOCK_CALL, call).fetchone()
        state = json.loads(state) if isinstance(state, str) else state
        state["answers"][question] = form["Digits"]
        state["asking"], state["turn"] = "pin", state["turn"] + 1
        url = request.base_url
        reply = ASK_PIN.format(url=url, key="***", turn=state["turn"])
        cursor.execute(UPDATE_ASKED, ("claim", json.dumps(state), at, call_id))
        payload = {k: v for k, v in request.args.items() if k != "key"} | form.to_dict()
        event = stored_event(call_id, "didml", "turn", payload)
        cursor.execute(STORE_EVENT, (*event, "asking", reply, at))
    sent = ASK_PIN.format(url=url, key=quote_plus(DIDML_SECRET), turn=state["turn"])
    return Response(sent, content_type="text/xml; charset=utf-8")


@app.post("/didml/status")
def status() -> Response:
    """A DIDforSale status callback: the call's row moves forward, the report is kept."""
    check_key(DIDML_SECRET)
    form = request.form
    reported = form["CallStatus"]
    at = now()
    with transaction() as cursor:
        call = ("didml", form["callSid"], form.get("From"), "-", "active", "{}", at, at)
        call_id, _, current, flow = cursor.execute(LOCK_CALL, call).fetchone()
        new = reported
        if reported in ("completed", ANSWERED):
            earlier = {row[0] for row in cursor.execute(STORED_STATUSES, (call_id,)).fetchall()}
            answered = ANSWERED in earlier or flow != "-"  # a flow ran: it was answered
            if reported == "completed" and not answered:
                new = "no-answer"
            elif reported == ANSWERED and "completed" in earlier:
                new = "completed"
        if RANK.get(new, -1) <= RANK.get(current or "", -1):
            new = current
        final = RANK.get(new or "") == 4
        duration = form.get("CallDuration")
        changes = (new, int(duration) if duration else None, at)
        ended = ("ended", at) if final else (None, None)
        cursor.execute(UPDATE_STATUS, (*changes, *ended, call_id))
        event = stored_event(call_id, "didml", "status", form.to_dict())
        cursor.execute(STORE_EVENT, (*event, reported, None, at))
    return Response(status=204)
