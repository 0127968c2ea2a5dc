"""Admin commands: `flask users`, `flask groups`, `flask directory`, `flask demo`.

Each command changes the database in one transaction: committed when it
succeeds; on bad input it prints `Error: ...`, exits 1 and changes nothing.
PINs are never printed, only whether one is set.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
from click.decorators import FC
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import config
from app.auth.passwords import PasswordError, hash_password
from app.db import get_session
from app.directory import demo, service
from app.directory.import_export import (
    DirectoryImportError,
    ImportSummary,
    export_directory,
    import_directory,
)
from app.directory.pins import PinError, PinPolicy, get_hasher
from app.directory.service import DirectoryError
from app.flows.loader import flow_pin_lengths
from app.flows.model import Flow
from app.flows.registry import current_registry
from app.models import User, utcnow
from app.neutral.phones import PhoneError

users_cli = AppGroup("users", help="Callers: an account number, a PIN and phones.")
groups_cli = AppGroup("groups", help="Groups: a number shared by members, with phones.")
directory_cli = AppGroup("directory", help="Import or export the whole directory.")
demo_cli = AppGroup("demo", help="A demo directory for trying Glue out.")
DEFAULT_URL = "http://127.0.0.1:5000"  # where `make run` serves by default


@contextmanager
def _transaction() -> Iterator[Session]:
    """The app's session, committed if the block succeeds, rolled back on bad input."""
    session = get_session()
    try:
        yield session
    except (DirectoryError, PinError, PhoneError, PasswordError) as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    session.commit()


def _policy() -> PinPolicy:
    """The PIN policy, narrowed to the PIN lengths the flows in FLOWS_DIR take:
    a PIN that no flow could take is refused, whatever the policy allows."""
    config = current_app.config
    flows = flow_pin_lengths(Path(config["FLOWS_DIR"]))
    return PinPolicy.from_config(config).with_flows(flows)


def _region() -> str:
    region: str = current_app.config["DEFAULT_REGION"]
    return region


def _secret_option(name: str, help_text: str) -> Callable[[FC], FC]:
    # Without it, the command prompts (which keeps the secret out of shell history),
    # but only once the rest of the command checks out: see _ask_secret.
    return click.option(name, help=help_text)


def _ask_secret(label: str) -> str:
    """A secret typed at a hidden prompt, twice. Asked inside the command, after the
    account was checked: a prompt on the option itself comes before any check."""
    value: str = click.prompt(label, hide_input=True, confirmation_prompt=True)
    return value


def _check(action: Callable[[Session], object]) -> None:
    """Run a lookup that may refuse the command (Error: ..., exit 1), changing nothing."""
    with _transaction() as session:
        action(session)
        session.rollback()


_phone_option = click.option(
    "--phone", "phones", multiple=True, metavar="NUMBER", help="A phone number (repeatable)."
)


# --- users -------------------------------------------------------------------


@users_cli.command("add")
@click.argument("account")
@click.option("--name", required=True, help="The user's name, as spoken to callers.")
@_secret_option("--pin", "The PIN (prompted for, hidden, if not given).")
@_phone_option
def add_user_command(account: str, name: str, pin: str | None, phones: tuple[str, ...]) -> None:
    """Add a user with ACCOUNT number."""
    if pin is None:
        _check(lambda session: service.check_new_user(session, account, name, phones, _region()))
        pin = _ask_secret("PIN")
    with _transaction() as session:
        user = service.add_user(
            session, get_hasher(), _policy(), account, name, pin, phones, _region()
        )
    click.echo(f"added user {user.account_number} ({user.name})")


@users_cli.command("set-pin")
@click.argument("account")
@_secret_option("--pin", "The new PIN (prompted for, hidden, if not given).")
def set_pin_command(account: str, pin: str | None) -> None:
    """Give user ACCOUNT a new PIN."""
    if pin is None:
        _check(lambda session: service.get_user(session, account))
        pin = _ask_secret("PIN")
    with _transaction() as session:
        service.set_pin(session, get_hasher(), _policy(), account, pin)
    click.echo(f"PIN changed for user {account}")


@users_cli.command("set-password")
@click.argument("account")
@_secret_option(
    "--password",
    "The web sign-in password, 8 characters or more (prompted for, hidden, if not given).",
)
def set_password_command(account: str, password: str | None) -> None:
    """Give user ACCOUNT a password for the click-to-call web page."""
    if password is None:
        _check(lambda session: service.get_user(session, account))
        password = _ask_secret("Password")
    with _transaction() as session:
        user = service.get_user(session, account)
        user.password_hash = hash_password(password)
    click.echo(f"web password set for user {account}")


@users_cli.command("make-admin")
@click.argument("account")
def make_admin_command(account: str) -> None:
    """Let user ACCOUNT use the admin pages (/admin/; they sign in with their web password)."""
    with _transaction() as session:
        service.get_user(session, account).is_admin = True
    click.echo(f"user {account} is an admin")


@users_cli.command("revoke-admin")
@click.argument("account")
def revoke_admin_command(account: str) -> None:
    """Take the admin pages away from user ACCOUNT."""
    with _transaction() as session:
        service.get_user(session, account).is_admin = False
    click.echo(f"user {account} is no longer an admin")


@users_cli.command("disable")
@click.argument("account")
def disable_user_command(account: str) -> None:
    """Stop user ACCOUNT from being verified."""
    with _transaction() as session:
        service.disable_user(session, account)
    click.echo(f"user {account} disabled")


@users_cli.command("enable")
@click.argument("account")
def enable_user_command(account: str) -> None:
    """Let user ACCOUNT be verified again."""
    with _transaction() as session:
        service.enable_user(session, account)
    click.echo(f"user {account} enabled")


@users_cli.command("unlock")
@click.argument("account")
def unlock_user_command(account: str) -> None:
    """Clear the failed attempts and lockout of user ACCOUNT."""
    with _transaction() as session:
        service.unlock(session, "user", account)
    click.echo(f"user {account} unlocked")


@users_cli.command("list")
def list_users_command() -> None:
    """List users (never their PINs)."""
    users = service.list_users(get_session())
    if not users:
        click.echo("no users")
        return
    now = utcnow()
    rows = [
        [
            user.account_number,
            user.name,
            _yes_no(user.active),
            ", ".join(phone.e164 for phone in user.phones),
            _locked_until(user.locked_until_latest(), now),
        ]
        for user in users
    ]
    click.echo(_table(["ACCOUNT", "NAME", "ACTIVE", "PHONES", "LOCKED UNTIL"], rows))


# --- groups ------------------------------------------------------------------


@groups_cli.command("add")
@click.argument("number")
@click.option("--name", required=True, help="The group's name, as spoken to callers.")
@click.option("--pin", help="The group's own PIN (without one, members' PINs are used).")
@_phone_option
def add_group_command(number: str, name: str, pin: str | None, phones: tuple[str, ...]) -> None:
    """Add a group with NUMBER."""
    with _transaction() as session:
        group = service.add_group(
            session, get_hasher(), _policy(), number, name, pin, phones, _region()
        )
    click.echo(f"added group {group.group_number} ({group.name})")


@groups_cli.command("add-member")
@click.argument("number")
@click.argument("account")
def add_member_command(number: str, account: str) -> None:
    """Make user ACCOUNT a member of group NUMBER."""
    with _transaction() as session:
        service.add_member(session, number, account)
    click.echo(f"user {account} added to group {number}")


@groups_cli.command("unlock")
@click.argument("number")
def unlock_group_command(number: str) -> None:
    """Clear the failed attempts and lockout of group NUMBER."""
    with _transaction() as session:
        service.unlock(session, "group", number)
    click.echo(f"group {number} unlocked")


@groups_cli.command("list")
def list_groups_command() -> None:
    """List groups with their members (never their PINs)."""
    groups = service.list_groups(get_session())
    if not groups:
        click.echo("no groups")
        return
    now = utcnow()
    rows = [
        [
            group.group_number,
            group.name,
            _yes_no(group.active),
            _yes_no(group.pin_hash is not None),
            ", ".join(sorted(m.user.account_number for m in group.memberships)),
            ", ".join(phone.e164 for phone in group.phones),
            _locked_until(group.locked_until_latest(), now),
        ]
        for group in groups
    ]
    headers = ["NUMBER", "NAME", "ACTIVE", "OWN PIN", "MEMBERS", "PHONES", "LOCKED UNTIL"]
    click.echo(_table(headers, rows))


# --- directory and demo --------------------------------------------------------


@directory_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Add the users and groups in FILE (.csv, .yaml, .yml): all of them, or none."""
    with _transaction() as session:
        summary = _import(session, file)
    click.echo(f"imported {summary.users} users, {summary.groups} groups")


@directory_cli.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "csv"]), default="yaml", show_default=True
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: stdout).",
)
def export_command(fmt: str, output: Path | None) -> None:
    """Write the directory (with PIN hashes, never PINs) in a form `import` reads back."""
    text = export_directory(get_session(), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{output}: {exc.strerror}") from None
    # format_filename: a name that is not UTF-8 (a shell passes any bytes) still prints.
    click.echo(f"exported the directory to {click.format_filename(output)}")


@demo_cli.command("load")
def load_demo_command() -> None:
    """Import demo/directory.yaml if there are no users yet (safe to run on every start)."""
    path = demo.demo_file(Path(current_app.root_path).parent)
    with _transaction() as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            click.echo("demo not loaded: the directory already has users")
            return
        summary = _import(session, path)
    click.echo(f"demo loaded from {path}: imported {summary.users} users, {summary.groups} groups")


@demo_cli.command("info")
@click.option(
    "--url", default=DEFAULT_URL, show_default=True, help="Where Glue is served (make run's)."
)
def demo_info_command(url: str) -> None:
    """Where to go, whom to sign in as and a first call to try (printed by `make run`).

    Only logins that work in this database are shown, and never a secret: the
    first call reads the IfbyPhone key from where this app found it.
    """
    if any(0xD800 <= ord(char) <= 0xDFFF for char in url):  # bytes a shell passed, not UTF-8
        raise click.BadParameter("not UTF-8 text", param_hint="'--url'")
    base = url.rstrip("/")
    session = get_session()
    path = demo.demo_file(Path(current_app.root_path).parent)
    try:
        logins = demo.working_logins(session, path)
        caller = demo.working_caller(session, get_hasher(), path)
    except DirectoryError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    session.rollback()
    lines = [f"Glue at {base}"]
    if logins:
        lines.append(f"  Sign in at {base}/login as:")
        width = max(len(f"{login.account} / {login.password}") for login in logins)
        for login in logins:
            who = f"{login.account} / {login.password}".ljust(width)
            admin = f", an admin: {base}/admin/" if login.admin else ""
            lines.append(f"    {who}  {login.name}{admin}")
    else:
        lines.append("  No demo login works here: flask users set-password ACCOUNT gives one.")
    lines.append("  Make any user an admin: flask users make-admin ACCOUNT")
    first_call = _first_call(base, caller)
    if first_call:
        lines += first_call
    activate = _activate_script()
    if activate:
        lines.append(f"  To use flask in another shell: . {activate}")
    click.echo("\n".join(lines))


def _first_call(base: str, caller: demo.Caller | None) -> list[str]:
    """A curl that posts what IfbyPhone would for the caller, on a flow that verifies
    by account number; [] when there is no such caller or flow."""
    flow = _account_flow()
    if caller is None or flow is None or flow.verify.claim is None:
        return []
    fields = {
        "session_id": "try-$(date +%s)",  # a new call each time it is run
        "caller_id": "3125550199",
        flow.verify.claim: caller.account,
        flow.verify.pin: caller.pin,
    }
    data = " ".join(f"-d {name}={value}" for name, value in fields.items())
    key_url = f"{base}/ifbyphone/{flow.name}?key={_ifbyphone_key()}"
    return [
        f"  A first call, as IfbyPhone makes it ({caller.name}: "
        f"account {caller.account}, PIN {caller.pin}):",
        f'    curl -s -X POST "{key_url}" {data}',
    ]


def _account_flow() -> Flow | None:
    """The first flow that verifies a user by account number and runs on IfbyPhone."""
    registry = current_registry()
    for name in registry.names():
        flow = registry.get(name)
        if flow and flow.verify.by == "account" and flow.platform("ifbyphone"):
            return flow
    return None


def _ifbyphone_key() -> str:
    """Shell text that yields the IfbyPhone secret when run, never the secret itself."""
    if not config.secret_is_in_file(current_app, "IFBYPHONE_SECRET"):
        return "$GLUE_IFBYPHONE_SECRET"
    program = 'import json,sys;print(json.load(open(sys.argv[1]))["IFBYPHONE_SECRET"])'
    return f"$(python3 -c '{program}' {shlex.quote(_shown(config.secrets_file(current_app)))})"


def _activate_script() -> str | None:
    """The script that puts this virtualenv's `flask` on PATH, if Glue runs in one."""
    if sys.prefix == sys.base_prefix:
        return None
    script = Path(sys.prefix) / "bin" / "activate"
    return _shown(script) if script.is_file() else None


def _shown(path: Path) -> str:
    """A path as short as it can be said from the current folder."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _import(session: Session, path: Path) -> ImportSummary:
    """Import a file, or print each bad row as FILE:LINE: message and exit 1."""
    try:
        return import_directory(session, get_hasher(), _policy(), _region(), path)
    except DirectoryImportError as exc:
        for error in exc.errors:
            click.echo(f"{path}:{error.line}: {error.message}", err=True)
        raise SystemExit(1) from None


# --- output ------------------------------------------------------------------


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _locked_until(until: datetime | None, now: datetime) -> str:
    if until is None or until <= now:
        return ""
    return f"{until:%Y-%m-%d %H:%M:%S} UTC"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)
