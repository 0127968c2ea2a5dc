"""Directory operations: users, groups, their phones, PINs and memberships.

Plain functions over a SQLAlchemy session, shared by the admin CLI and the
import. They validate everything before adding anything to the session, so a
failed call leaves the session as it was; they never commit (callers do).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.directory import pins
from app.directory.pins import PinHasher, PinPolicy
from app.models import Group, Membership, PhoneNumber, User
from app.neutral import phones as phone_numbers

NAME_MAX_LENGTH = 200
_NUMBER = re.compile(r"[0-9]{1,32}")


class DirectoryError(ValueError):
    """Bad input for a directory operation; the message is one line for an admin."""


def hash_pin(hasher: PinHasher, policy: PinPolicy, pin: str) -> str:
    """The stored form of a PIN that meets the policy."""
    try:
        policy.check(pin)
    except pins.PinError as exc:
        raise DirectoryError(str(exc)) from None
    return hasher.hash(pin)


def check_pin_hash(value: str) -> str:
    """An already-hashed PIN (from an export), checked for the stored format."""
    if not pins.looks_like_hash(value):
        raise DirectoryError("pin_hash is not a PIN hash exported by this server")
    return value


def add_user(
    session: Session,
    hasher: PinHasher,
    policy: PinPolicy,
    account: str,
    name: str,
    pin: str,
    phones: Iterable[str],
    region: str,
) -> User:
    return add_user_hashed(session, account, name, hash_pin(hasher, policy, pin), phones, region)


def add_user_hashed(
    session: Session,
    account: str,
    name: str,
    pin_hash: str,
    phones: Iterable[str],
    region: str,
    *,
    active: bool = True,
) -> User:
    """Add a user whose PIN is already hashed (the import of an export uses this)."""
    account, name, e164s = check_new_user(session, account, name, phones, region)
    user = User(
        account_number=account,
        name=name,
        pin_hash=pin_hash,
        active=active,
        phones=[PhoneNumber(e164=e164) for e164 in e164s],
    )
    session.add(user)
    return user


def check_new_user(
    session: Session, account: str, name: str, phones: Iterable[str], region: str
) -> tuple[str, str, list[str]]:
    """The account number, name and E.164 phones of a user that may be added
    (everything but the PIN); DirectoryError says what stops it."""
    account = _check_number(account, "account number")
    name = _check_name(name)
    e164s = _new_phones(session, phones, region)
    if _find_user(session, account) is not None:
        raise DirectoryError(f"user {account} already exists")
    return account, name, e164s


def set_pin(session: Session, hasher: PinHasher, policy: PinPolicy, account: str, pin: str) -> User:
    user = get_user(session, account)
    user.pin_hash = hash_pin(hasher, policy, pin)
    return user


def disable_user(session: Session, account: str) -> User:
    user = get_user(session, account)
    user.active = False
    return user


def enable_user(session: Session, account: str) -> User:
    user = get_user(session, account)
    user.active = True
    return user


def unlock(session: Session, kind: Literal["user", "group"], number: str) -> User | Group:
    """Forget failed attempts and past lockouts, so the next lockout is short again."""
    if kind == "user":
        record: User | Group = get_user(session, number)
    elif kind == "group":
        record = get_group(session, number)
    else:
        raise DirectoryError(f"unknown kind {kind!r}: expected user or group")
    record.failed_attempts = record.owner_failed_attempts = 0
    record.lockouts = record.owner_lockouts = 0
    record.locked_until = record.owner_locked_until = None
    return record


def add_group(
    session: Session,
    hasher: PinHasher,
    policy: PinPolicy,
    number: str,
    name: str,
    pin: str | None,
    phones: Iterable[str],
    region: str,
) -> Group:
    pin_hash = None if pin is None else hash_pin(hasher, policy, pin)
    return add_group_hashed(session, number, name, pin_hash, phones, region)


def add_group_hashed(
    session: Session,
    number: str,
    name: str,
    pin_hash: str | None,
    phones: Iterable[str],
    region: str,
    *,
    active: bool = True,
) -> Group:
    """Add a group whose PIN (if any) is already hashed."""
    number = _check_number(number, "group number")
    name = _check_name(name)
    e164s = _new_phones(session, phones, region)
    if _find_group(session, number) is not None:
        raise DirectoryError(f"group {number} already exists")
    group = Group(
        group_number=number,
        name=name,
        pin_hash=pin_hash,
        active=active,
        phones=[PhoneNumber(e164=e164) for e164 in e164s],
    )
    session.add(group)
    return group


def add_member(session: Session, group_number: str, account: str) -> Membership:
    group = get_group(session, group_number)
    user = get_user(session, account)
    existing = session.scalar(
        select(Membership).where(Membership.group_id == group.id, Membership.user_id == user.id)
    )
    if existing is not None:
        raise DirectoryError(f"user {account} is already a member of group {group_number}")
    membership = Membership(group=group, user=user)
    session.add(membership)
    return membership


def list_users(session: Session) -> list[User]:
    """Every user with phones loaded, in account-number order."""
    stmt = (
        select(User)
        .options(selectinload(User.phones))
        .order_by(func.length(User.account_number), User.account_number)
    )
    return list(session.scalars(stmt))


def list_groups(session: Session) -> list[Group]:
    """Every group with phones and members loaded, in group-number order."""
    stmt = (
        select(Group)
        .options(
            selectinload(Group.phones),
            selectinload(Group.memberships).selectinload(Membership.user),
        )
        .order_by(func.length(Group.group_number), Group.group_number)
    )
    return list(session.scalars(stmt))


def get_user(session: Session, account: str) -> User:
    user = _find_user(session, _check_number(account, "account number"))
    if user is None:
        raise DirectoryError(f"no user with account number {account}")
    return user


def get_group(session: Session, number: str) -> Group:
    group = _find_group(session, _check_number(number, "group number"))
    if group is None:
        raise DirectoryError(f"no group with number {number}")
    return group


def _find_user(session: Session, account: str) -> User | None:
    return session.scalar(select(User).where(User.account_number == account))


def _find_group(session: Session, number: str) -> Group | None:
    return session.scalar(select(Group).where(Group.group_number == number))


def _check_number(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        raise DirectoryError(f"{what} must be 1-32 digits, got {value!r}")
    return value


def _check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DirectoryError("name must not be empty")
    name = value.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise DirectoryError(f"name must be at most {NAME_MAX_LENGTH} characters")
    # A newline or other control character would break lists and logs.
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise DirectoryError("name must not contain control characters")
    # A lone surrogate is a byte that was not UTF-8 (a shell passes them so): unstorable.
    if any(unicodedata.category(char) == "Cs" for char in name):
        raise DirectoryError("name must be UTF-8 text")
    return name


def _new_phones(session: Session, raw_phones: Iterable[str], region: str) -> list[str]:
    """E.164 forms of phones that nobody has registered yet (a number identifies one owner)."""
    e164s: list[str] = []
    for raw in raw_phones:
        try:
            e164 = phone_numbers.to_e164(raw, region)
        except phone_numbers.PhoneError as exc:
            raise DirectoryError(str(exc)) from None
        if e164 in e164s:
            raise DirectoryError(f"phone {e164} is given twice")
        e164s.append(e164)
    if not e164s:
        return e164s
    taken = session.scalars(
        select(PhoneNumber)
        .where(PhoneNumber.e164.in_(e164s))
        .options(selectinload(PhoneNumber.user), selectinload(PhoneNumber.group))
    ).first()
    if taken is not None:
        raise DirectoryError(f"phone {taken.e164} is already registered to {_owner(taken)}")
    return e164s


def _owner(phone: PhoneNumber) -> str:
    if phone.user is not None:
        return f"user {phone.user.account_number}"
    assert phone.group is not None  # the one_owner constraint guarantees an owner
    return f"group {phone.group.group_number}"
