"""One-time codes: never stored, single use, expiry, tries, a document read once."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import OneTimeCode, PhoneNumber, User, utcnow
from app.outbound import codes
from tests.helpers.directory import HASHER, add_user


def issue(session: Session, user: User, phone: str = "+13125550177") -> codes.IssuedCode:
    issued = codes.issue(session, HASHER, user, phone)
    session.commit()
    return issued


def test_a_code_is_six_digits_valid_ten_minutes_with_five_tries(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    assert len(issued.code) == 6 and issued.code.isdigit()
    row = session.scalars(select(OneTimeCode)).one()
    assert row.expires_at - utcnow() <= timedelta(minutes=10)
    assert row.tries_left == 5


def test_the_right_code_confirms_the_phone_once(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    assert codes.check(session, HASHER, user, issued.record.id, issued.code) == "confirmed"
    session.commit()
    assert session.scalars(
        select(PhoneNumber.e164).where(PhoneNumber.user_id == user.id)
    ).all() == ["+13125550177"]
    assert codes.check(session, HASHER, user, issued.record.id, issued.code) == "used"


def test_wrong_codes_use_up_the_tries(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    wrong = "000000" if issued.code != "000000" else "111111"
    results = [codes.check(session, HASHER, user, issued.record.id, wrong) for _ in range(5)]
    session.commit()
    assert results == ["wrong"] * 5
    assert codes.check(session, HASHER, user, issued.record.id, issued.code) == "no_tries"


def test_an_expired_code_is_refused(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    issued.record.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert codes.check(session, HASHER, user, issued.record.id, issued.code) == "expired"


def test_another_users_code_is_unknown(session: Session) -> None:
    linus = add_user(session, "1005", "Linus", "3579")
    ada = add_user(session, "1001", "Ada", "2468")
    issued = issue(session, linus)
    assert codes.check(session, HASHER, ada, issued.record.id, issued.code) == "unknown"


def test_concurrent_tries_cannot_exceed_the_limit(app: Flask, session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    wrong = "000000" if issued.code != "000000" else "111111"
    user_id, code_id = user.id, issued.record.id
    barrier = threading.Barrier(12, timeout=30)
    results: list[str] = []

    def attempt() -> None:
        own = Session(app.extensions["glue.engine"], expire_on_commit=False)
        try:
            tried = own.get(User, user_id)
            own.commit()  # the check must begin its own (writing) transaction
            assert tried is not None
            barrier.wait()
            results.append(codes.check(own, HASHER, tried, code_id, wrong))
            own.commit()
        finally:
            own.close()

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(["wrong"] * 5 + ["no_tries"] * 7)


def test_the_voice_document_reads_the_code_once_and_only_at_its_token(
    client: FlaskClient, session: Session
) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    url = f"/calls/voice/{issued.record.id}/{codes.token_of(HASHER, issued.record)}"
    first = etree.fromstring(client.post(url).data)
    spoken = [el.text for el in first.iter("Say")]
    assert spoken == [f"Your Glue code is {' '.join(issued.code)}."] * 2
    assert first[-1].tag == "Hangup"
    wrong_token = f"/calls/voice/{issued.record.id}/{'A' * 43}"
    for again in (url, wrong_token, "/calls/voice/999/x"):
        assert [el.tag for el in etree.fromstring(client.get(again).data)] == ["Hangup"]


def test_neither_the_code_nor_the_voice_token_is_stored(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    row = session.scalars(select(OneTimeCode)).one()
    stored = str({c.name: getattr(row, c.name) for c in OneTimeCode.__table__.columns})
    assert issued.code not in stored
    assert codes.token_of(HASHER, row) not in stored


def test_a_new_code_ends_the_users_open_ones(session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    first = issue(session, user)
    second = issue(session, user)
    assert codes.check(session, HASHER, user, first.record.id, first.code) == "expired"
    assert codes.check(session, HASHER, user, second.record.id, second.code) == "confirmed"


def test_two_fetches_at_once_read_the_code_once(app: Flask, session: Session) -> None:
    user = add_user(session, "1005", "Linus", "3579")
    issued = issue(session, user)
    code_id, token = issued.record.id, codes.token_of(HASHER, issued.record)
    barrier = threading.Barrier(8, timeout=30)
    read: list[str | None] = []

    def fetch() -> None:
        own = Session(app.extensions["glue.engine"])
        try:
            barrier.wait()
            read.append(codes.read_once(own, HASHER, code_id, token))
            own.commit()
        finally:
            own.close()

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(read, key=str) == [issued.code] + [None] * 7
