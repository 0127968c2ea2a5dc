"""What a check reads of the directory: records as stored, read on the driver."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import UnknownClaim, User, utcnow
from app.verification import records
from app.verification.records import record_of
from tests.helpers.directory import add_group, add_user


def test_a_user_is_read_with_its_phones_in_the_order_they_were_added(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550102", "+13125550101")
    session.execute(update(User).where(User.id == ada.id).values(owner_failed_attempts=2))
    session.commit()
    session.refresh(ada)
    found = records.user_by_account(session.connection(), "1001")
    assert found is not None
    record, phones = found
    assert phones == ("+13125550102", "+13125550101")
    assert record == record_of(ada)  # the same columns the ORM holds
    assert (record.is_user, record.number, record.owner_failed_attempts) == (True, "1001", 2)
    assert records.user_by_id(session.connection(), ada.id) == found
    assert records.user_by_account(session.connection(), "9999") is None
    session.rollback()


def test_a_user_without_phones_has_none(session: Session) -> None:
    add_user(session, "1002", "Bob", "1357")
    found = records.user_by_account(session.connection(), "1002")
    assert found is not None and found[1] == ()
    session.rollback()


def test_groups_phones_and_unknown_claims(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    line = add_group(session, "5001", "Help line", None, "+13125550500", members=(ada,))
    connection = session.connection()
    group = records.group_by_number(connection, "5001")
    assert group == record_of(line) and group is not None and group.is_group
    assert group.pin_hash is None
    assert records.group_by_id(connection, line.id) == group
    assert records.phone_owner(connection, "+13125550500") == (None, line.id)
    assert records.phone_owner(connection, "+13125550101") == (ada.id, None)
    assert records.phone_owner(connection, "+13125550999") is None
    # A member's phone is the group's own, for lockout.
    assert records.group_owns_phone(connection, line.id, "+13125550101")
    assert not records.group_owns_phone(connection, line.id, "+13125550999")
    session.rollback()
    session.add(UnknownClaim(claim_type="account", claimed="9999", created_at=utcnow()))
    session.commit()
    claim = records.unknown_claim(session.connection(), "account", "9999")
    assert claim is not None and claim.model is UnknownClaim
    assert (claim.failed_attempts, claim.lockouts, claim.locked_until) == (0, 0, None)
    session.rollback()
