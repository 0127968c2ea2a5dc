"""The bound: a verification step's database work written by hand, and nothing else.

What any implementation of the step must do at the least, on the floor's stack
(Flask, the same gunicorn settings): read the form, check the shared secret,
and in one transaction store the call, read the user and its phones, check the
PIN's keyed hash, store the attempt, update the call and store the event, then
answer fixed SurVo XML. Raw driver calls (sqlite3, psycopg), one connection
per worker; SQLite writers take turns on an flock, as Glue's do.

None of Glue's guarantees are here: no delivery key (a retried delivery is
stored twice), no rate limits, lockout, request ids, security headers, flows or
dialects, and a fixed field name is all the masking (the PIN is never stored). It is a
yardstick for the bench, never a way to answer calls:
`GLUE_DATABASE_URL=... gunicorn -c bench/gunicorn_bench.conf.py bench.bound:app`.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, request

from app.directory.pins import PinHasher

URL = os.environ["GLUE_DATABASE_URL"]
SQLITE = URL.startswith("sqlite:")
SECRET = os.environ["GLUE_IFBYPHONE_SECRET"]
HASHER = PinHasher(os.environ["GLUE_PIN_SECRET"])
REPLY = (
    "<?xml version='1.0' encoding='utf-8'?>\n<action><app>survo</app><parameters>"
    "<id>{survo}</id><user_parameters><p_t>turn=1</p_t></user_parameters></parameters>"
    "</action>"
)

# The statements, in the driver's own parameter style (qmark or format).
P = "?" if SQLITE else "%s"
NEW_CALL = (
    "INSERT INTO calls (platform, platform_call_id, caller_number, flow, status, state,"
    f" started_at, updated_at) VALUES ({', '.join([P] * 8)}) RETURNING id"
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


def now() -> Any:
    """Naive UTC, as Glue stores it; on SQLite in SQLAlchemy's text format."""
    moment = datetime.now(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if SQLITE else moment


@app.post("/ifbyphone/<flow>")
def verify(flow: str) -> Response:
    form = request.form
    if not hmac.compare_digest(request.args.get("key", ""), SECRET):
        abort(403)
    (db, turns), at = connection(), now()
    if SQLITE:
        fcntl.flock(turns, fcntl.LOCK_EX)
        db.execute("BEGIN IMMEDIATE")
    cursor = db.cursor()
    try:
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
        payload = json.dumps(form.to_dict() | {"pin": "***"})
        key = os.urandom(16).hex()
        event = (call_id, "ifbyphone", "turn", key, "-", payload, outcome, reply, at)
        cursor.execute(STORE_EVENT, event)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        cursor.close()
        if SQLITE:
            fcntl.flock(turns, fcntl.LOCK_UN)
    return Response(reply, content_type="text/xml; charset=utf-8")
