"""The demo directory (demo/directory.yaml), and which of its logins work here.

`flask demo info` prints only what a newcomer can really use: a demo user the
database still holds, active, with the web password or PIN the file gives. A
directory that was never the demo's, or that an admin has since changed, shows
less or nothing, rather than logins that fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.passwords import verify_password
from app.directory.import_export import Entry, read_entries
from app.directory.pins import PinHasher
from app.models import User


@dataclass(frozen=True)
class Login:
    """A web sign-in of the demo that works: /login, and /admin/ for an admin."""

    account: str
    name: str
    password: str
    admin: bool


@dataclass(frozen=True)
class Caller:
    """A demo user a platform can verify: account number and PIN, as keyed on a phone."""

    account: str
    name: str
    pin: str


def demo_file(project_root: Path) -> Path:
    return project_root / "demo" / "directory.yaml"


def working_logins(session: Session, path: Path) -> list[Login]:
    """The demo users of the file who can sign in to the web page with its password."""
    logins = []
    for entry, user in _demo_users(session, path):
        if entry.password is not None and verify_password(user.password_hash, entry.password):
            logins.append(Login(user.account_number, user.name, entry.password, user.is_admin))
    return logins


def working_caller(session: Session, hasher: PinHasher, path: Path) -> Caller | None:
    """The first demo user with a phone whose PIN is still the file's, if any."""
    for entry, user in _demo_users(session, path):
        if entry.pin is not None and user.phones and hasher.verify(entry.pin, user.pin_hash):
            return Caller(user.account_number, user.name, entry.pin)
    return None


def _demo_users(session: Session, path: Path) -> list[tuple[Entry, User]]:
    """Each active user of the file, with its row in the database."""
    found = []
    for entry in read_entries(path):
        if entry.kind != "user":
            continue
        user = session.scalar(select(User).where(User.account_number == entry.number))
        if user is not None and user.active:
            found.append((entry, user))
    return found
