"""Rows for tests, written straight to the database (independent of the CLI)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.directory.pins import PinHasher
from app.models import Group, Membership, PhoneNumber, User

HASHER = PinHasher("test-pin-secret")  # the PIN_SECRET of tests/helpers/settings.py


def add_user(
    session: Session, account: str, name: str, pin: str, *phones: str, active: bool = True
) -> User:
    user = User(account_number=account, name=name, pin_hash=HASHER.hash(pin), active=active)
    user.phones = [PhoneNumber(e164=p) for p in phones]
    session.add(user)
    session.commit()
    return user


def add_group(
    session: Session,
    number: str,
    name: str,
    pin: str | None,
    *phones: str,
    members: tuple[User, ...] = (),
) -> Group:
    group = Group(group_number=number, name=name, pin_hash=HASHER.hash(pin) if pin else None)
    group.phones = [PhoneNumber(e164=p) for p in phones]
    group.memberships = [Membership(user=m) for m in members]
    session.add(group)
    session.commit()
    return group


def add_users(session: Session, rows: Iterable[tuple[str, str, str, str]]) -> None:
    """Many users in one commit: (account, name, PIN, phone) each."""
    session.add_all(
        User(
            account_number=account,
            name=name,
            pin_hash=HASHER.hash(pin),
            phones=[PhoneNumber(e164=phone)],
        )
        for account, name, pin, phone in rows
    )
    session.commit()
