"""Web passwords: argon2 hashing, sign-in checks, `flask users set-password`, and
passwords in directory imports and exports."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import passwords
from app.auth.passwords import PasswordError, authenticate, hash_password, verify_password
from app.directory.import_export import (
    DirectoryImportError,
    RowError,
    export_directory,
    import_directory,
)
from app.directory.pins import PinHasher
from app.directory.service import PinPolicy
from app.models import User
from tests.helpers.directory import add_user

POLICY = PinPolicy(min_length=4, max_length=10)
HASHER = PinHasher("test-pin-secret")


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, "correct horse")
    assert not verify_password(first, "correct hors")
    assert not verify_password("not a hash", "correct horse")
    assert not verify_password(None, "correct horse")  # the decoy never matches


def test_the_password_policy() -> None:
    with pytest.raises(PasswordError, match="at least 8"):
        hash_password("seven77")
    with pytest.raises(PasswordError, match="at most"):
        hash_password("x" * (passwords.MAX_LENGTH + 1))


def test_every_refusal_costs_a_hash_check(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown, disabled and password-less accounts spend the same work as a wrong password."""
    user = add_user(session, "1001", "Ada", "2468")
    user.password_hash = hash_password("ada-demo-1")
    add_user(session, "1003", "No password", "8642")
    disabled = add_user(session, "1004", "Disabled", "9999", active=False)
    disabled.password_hash = hash_password("disabled-1")
    session.commit()
    checked: list[str] = []
    real = passwords._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return real.verify(stored, password)

        def hash(self, password: str) -> str:
            return real.hash(password)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    assert authenticate(session, "1001", "ada-demo-1") is user
    for account, password in [
        ("1001", "wrong-password"),
        ("9999", "ada-demo-1"),
        ("1003", "anything-1"),
        ("1004", "disabled-1"),
    ]:
        assert authenticate(session, account, password) is None
    assert len(checked) == 5
    decoys = checked[2:]
    assert all(stored.startswith("$argon2id$") for stored in decoys)
    assert user.password_hash not in decoys and disabled.password_hash not in decoys


def get(app: Flask, account: str) -> User:
    with app.extensions["glue.sessionmaker"]() as session:
        return session.scalars(select(User).where(User.account_number == account)).one()


def test_set_password_command(app: Flask, runner: FlaskCliRunner, session: Session) -> None:
    add_user(session, "1001", "Ada", "2468")
    done = runner.invoke(args=["users", "set-password", "1001", "--password", "ada-demo-1"])
    assert done.exit_code == 0, done.output
    assert done.stdout == "web password set for user 1001\n"
    assert verify_password(get(app, "1001").password_hash, "ada-demo-1")
    assert "ada-demo-1" not in done.output

    prompted = runner.invoke(
        args=["users", "set-password", "1001"], input="new-secret-2\nnew-secret-2\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert "new-secret-2" not in prompted.output  # the prompt hides it
    assert verify_password(get(app, "1001").password_hash, "new-secret-2")

    short = runner.invoke(args=["users", "set-password", "1001", "--password", "short"])
    assert short.exit_code == 1 and "at least 8 characters" in short.stderr
    unknown = runner.invoke(args=["users", "set-password", "9999", "--password", "long-enough"])
    assert unknown.exit_code == 1 and "no user with account number 9999" in unknown.stderr
    assert verify_password(get(app, "1001").password_hash, "new-secret-2")


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_passwords_import_hashed_and_export_as_hashes_that_import_back(
    session: Session, tmp_path: Path, fmt: str
) -> None:
    source = {
        "yaml": "users:\n"
        '  - {account: "1001", name: Ada, pin: "2468", password: ada-demo-1}\n'
        '  - {account: "1002", name: Grace, pin: "1357"}\n',
        "csv": "kind,number,name,pin,password\n"
        "user,1001,Ada,2468,ada-demo-1\n"
        "user,1002,Grace,1357,\n",
    }[fmt]
    path = tmp_path / f"in.{fmt}"
    path.write_text(source)
    import_directory(session, HASHER, POLICY, "US", path)
    session.commit()
    ada = session.scalars(select(User).where(User.account_number == "1001")).one()
    assert ada.password_hash is not None and verify_password(ada.password_hash, "ada-demo-1")
    grace = session.scalars(select(User).where(User.account_number == "1002")).one()
    assert grace.password_hash is None

    exported = export_directory(session, fmt)
    assert "ada-demo-1" not in exported and ada.password_hash in exported
    for user in (ada, grace):
        session.delete(user)
    session.commit()
    again = tmp_path / f"again.{fmt}"
    again.write_text(exported)
    import_directory(session, HASHER, POLICY, "US", again)
    session.commit()
    back = session.scalars(select(User).where(User.account_number == "1001")).one()
    assert back.password_hash == ada.password_hash
    assert export_directory(session, fmt) == exported


@pytest.mark.parametrize(
    ("fmt", "text", "error"),
    [
        (
            "yaml",
            'users:\n  - {account: "1", name: A, pin: "2468", password: short}\n',
            RowError(2, "the password must be at least 8 characters"),
        ),
        (
            "yaml",
            'users:\n  - {account: "1", name: A, pin: "2468", password_hash: "plain"}\n',
            RowError(2, "password_hash is not a password hash exported by Glue"),
        ),
        (
            "yaml",
            'users:\n  - {account: "1", name: A, pin: "2468", password: long-enough,'
            ' password_hash: "$argon2id$x"}\n',
            RowError(2, "give password or password_hash, not both"),
        ),
        (
            "yaml",
            'groups:\n  - {number: "5", name: G, password: long-enough}\n',
            RowError(2, "unknown field 'password' for a group"),
        ),
        (
            "csv",
            "kind,number,name,password\ngroup,5,G,long-enough\n",
            RowError(2, "a group cannot have a password"),
        ),
    ],
)
def test_bad_passwords_in_an_import_are_reported(
    session: Session, tmp_path: Path, fmt: str, text: str, error: RowError
) -> None:
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    with pytest.raises(DirectoryImportError) as caught:
        import_directory(session, HASHER, POLICY, "US", path)
    assert caught.value.errors == [error]
    assert session.scalars(select(User)).all() == []
