"""Concurrency across hosts: many callers at once, spread over two gunicorn
servers (two workers each) on one PostgreSQL schema.

Every caller calls from a number of its own. Threads meet at a barrier so their
requests arrive together.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.directory import add_user, add_users
from tests.helpers.hardening.callers import PLATFORMS, attempt
from tests.helpers.hardening.hosts import PUBLIC_URL, SERVER_ENV
from tests.helpers.journeys import LOCKED, RETRY, Heard, e164
from tests.helpers.servers import Balancer, Reply, Server
from tests.helpers.settings import TEST_SECRETS

THRESHOLD = int(SERVER_ENV["GLUE_LOCKOUT_THRESHOLD"])
T = TypeVar("T")


def at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """`work(0)` … `work(count - 1)`, each in its own thread, released together."""
    barrier = threading.Barrier(count, timeout=30)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len(results) == count, "a caller never finished"
    return [results[i] for i in range(count)]


def balancer(servers: tuple[Server, Server], index: int) -> Balancer:
    """Callers alternate which host takes their first request, then alternate hosts."""
    a, b = servers
    return Balancer((a.base, b.base) if index % 2 == 0 else (b.base, a.base))


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_concurrent_wrong_pins_lock_after_exactly_the_threshold(
    two_servers: tuple[Server, Server], db: Session
) -> None:
    add_user(db, "1001", "Ada Lovelace", "2468", "+13125550101")
    clients = [balancer(two_servers, i) for i in range(50)]

    def wrong_pin(i: int) -> Heard:
        platform = PLATFORMS[i % len(PLATFORMS)]
        return attempt(clients[i], platform, f"wrong-{i}", f"+1312600{i:04d}", "1001", "0000")

    heard = at_once(50, wrong_pin)

    # Exactly THRESHOLD failures counted, whichever host or worker took them:
    # the last one locked the account, and every other caller was refused.
    assert Counter(heard) == {RETRY: THRESHOLD - 1, LOCKED: 50 - THRESHOLD + 1}
    reasons = db.scalars(select(VerificationAttempt.reason))
    assert Counter(reasons) == {
        "wrong_pin": THRESHOLD - 1,
        "locked_now": 1,
        "locked": 50 - THRESHOLD,
    }
    ada = db.scalars(select(User).where(User.account_number == "1001")).one()
    assert (ada.failed_attempts, ada.lockouts) == (0, 1)
    assert ada.locked_until is not None
    assert count(db, Call) == 50
    assert {r.server for c in clients for r in c.replies} == {s.base for s in two_servers}


def test_200_concurrent_callers_each_hear_their_own_answer(
    two_servers: tuple[Server, Server], db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    callers = [
        (f"{3000 + i}", f"Caller {3000 + i}", f"{(i * 7919 + 1234) % 10000:04d}")
        for i in range(200)
    ]
    phones = [f"+1312700{i:04d}" for i in range(200)]
    add_users(db, [(a, n, p, phone) for (a, n, p), phone in zip(callers, phones, strict=True)])
    clients = [balancer(two_servers, i) for i in range(200)]

    def right_pin(i: int) -> Heard:
        account, _, pin = callers[i]
        platform = PLATFORMS[i % len(PLATFORMS)]
        return attempt(clients[i], platform, f"many-{i}", phones[i], account, pin)

    started = time.monotonic()
    heard = at_once(200, right_pin)
    seconds = time.monotonic() - started

    expected = [
        Heard((f"Thank you, {name}.",), ("dial", e164(phone)))
        for (_, name, _), phone in zip(callers, phones, strict=True)
    ]
    assert heard == expected
    db.commit()
    calls = db.scalars(select(Call)).all()
    assert len(calls) == 200
    assert {(c.outcome, c.status) for c in calls} == {("verified", "ended")}
    accounts = {u.id: u.account_number for u in db.scalars(select(User))}
    attempts = db.scalars(select(VerificationAttempt)).all()
    assert sorted((a.claimed, accounts[a.user_id], a.outcome) for a in attempts) == sorted(
        (account, account, "verified") for account, _, _ in callers
    )
    requests = [r for c in clients for r in c.replies]
    assert {r.server for r in requests} == {s.base for s in two_servers}
    with capsys.disabled():
        slowest = max(r.seconds for r in requests)
        print(
            f"\n200 callers, {len(requests)} requests on 2 hosts: {seconds:.2f} s"
            f" (slowest request {slowest:.2f} s)"
        )


def _didml_status(client: Balancer, call_id: str) -> Reply:
    return client.post(
        f"/didml/status?key={TEST_SECRETS['DIDML_SECRET']}",
        data={"callSid": call_id, "CallStatus": "completed", "CallDuration": "7"},
    )


def _twiml_status(client: Balancer, call_id: str) -> Reply:
    fields = {"CallSid": call_id, "CallStatus": "completed", "CallDuration": "7"}
    signature = RequestValidator(TEST_SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(
        f"{PUBLIC_URL}/twiml/status", fields
    )
    return client.post("/twiml/status", data=fields, headers={"X-Twilio-Signature": signature})


def _voipnow_hangup(client: Balancer, call_id: str) -> Reply:
    return client.post(
        f"/voipnow/verify_caller/hangup?key={TEST_SECRETS['VOIPNOW_SECRET']}",
        data={"CallID": call_id, "CallStatus": "ANSWER", "CallerIDNum": "3125550199"},
    )


DELIVERIES = {
    "didml": (_didml_status, "didml", 204),
    "twiml": (_twiml_status, "twiml", 204),
    "voipnow-hangup": (_voipnow_hangup, "voipnow", 200),
}


@pytest.mark.parametrize("kind", DELIVERIES)
def test_one_status_delivered_many_times_to_both_hosts_is_stored_once(
    two_servers: tuple[Server, Server], db: Session, kind: str
) -> None:
    deliver, platform, ok = DELIVERIES[kind]
    clients = [balancer(two_servers, i) for i in range(20)]
    replies = at_once(20, lambda i: deliver(clients[i], "dup-1"))
    replies += [deliver(balancer(two_servers, i), "dup-1") for i in range(2)]  # late retries

    assert [r.status_code for r in replies] == [ok] * 22
    assert {r.server for r in replies} == {s.base for s in two_servers}
    events = db.scalars(select(CallEvent)).all()
    assert [(e.platform, e.kind, e.outcome) for e in events] == [(platform, "status", "completed")]
    call = db.scalars(select(Call)).one()
    # DIDforSale's `completed` with no `answered` reported ends a call nobody answered.
    read = "no-answer" if platform == "didml" else "completed"
    assert (call.platform_call_id, call.platform_status, call.status) == ("dup-1", read, "ended")
    assert events[0].call_id == call.id
