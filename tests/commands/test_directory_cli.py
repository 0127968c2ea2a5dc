"""The directory admin commands, run through the Flask CLI on both backends.

Each command runs in its own app context, as from a shell; the tests check what
it committed through a session of their own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.serving import make_server

from app import create_app
from app.auth.passwords import verify_password
from app.directory.pins import PinHasher, get_hasher
from app.models import Group, Membership, PhoneNumber, User, utcnow
from tests.helpers.flows import shipped_copy
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import sign_in

# Eight digits (the most the shipped flows take), so that none turns up by
# chance in a hash or a phone number.
ADA_PIN = "24681357"
GRACE_PIN = "86753091"
GROUP_PIN = "50505050"


@pytest.fixture
def hasher(app: Flask) -> PinHasher:
    with app.app_context():
        return get_hasher()


@contextmanager
def db(app: Flask) -> Iterator[Session]:
    """A session of the test's own, to see what the commands committed."""
    with app.extensions["glue.sessionmaker"]() as session:
        yield session


def snapshot(app: Flask) -> dict[str, Any]:
    """Every directory row in a comparable form (no ids or creation times)."""
    with db(app) as session:
        users = sorted(
            (
                u.account_number,
                u.name,
                u.pin_hash,
                u.active,
                u.failed_attempts,
                u.lockouts,
                u.locked_until,
                tuple(p.e164 for p in u.phones),
            )
            for u in session.scalars(select(User))
        )
        groups = sorted(
            (
                g.group_number,
                g.name,
                g.pin_hash,
                g.active,
                g.failed_attempts,
                g.lockouts,
                g.locked_until,
                tuple(p.e164 for p in g.phones),
                tuple(sorted(m.user.account_number for m in g.memberships)),
            )
            for g in session.scalars(select(Group))
        )
        phones = session.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.e164)).all()
    return {"users": users, "groups": groups, "phones": phones}


def get_user(app: Flask, account: str) -> User:
    stmt = select(User).where(User.account_number == account).options(selectinload(User.phones))
    with db(app) as session:
        return session.scalars(stmt).one()


def get_group(app: Flask, number: str) -> Group:
    stmt = (
        select(Group)
        .where(Group.group_number == number)
        .options(
            selectinload(Group.phones),
            selectinload(Group.memberships).selectinload(Membership.user),
        )
    )
    with db(app) as session:
        return session.scalars(stmt).one()


def run(runner: FlaskCliRunner, *args: str, input: str | None = None) -> Result:
    return runner.invoke(args=list(args), input=input)


def assert_ok(result: Result, stdout: str | None = None) -> None:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    if stdout is not None:
        assert result.stdout == stdout


def assert_error(result: Result, message: str) -> None:
    """Exit 1 with one line `Error: ...` on stderr and nothing on stdout."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def add_ada(runner: FlaskCliRunner) -> None:
    result = run(
        runner,
        "users",
        "add",
        "1001",
        "--name",
        "Ada Lovelace",
        "--pin",
        ADA_PIN,
        "--phone",
        "+13125550101",
    )
    assert_ok(result)


def add_night_shift(runner: FlaskCliRunner) -> None:
    result = run(
        runner,
        "groups",
        "add",
        "500",
        "--name",
        "Night shift",
        "--pin",
        GROUP_PIN,
        "--phone",
        "(312) 555-0500",
    )
    assert_ok(result)


def lock(app: Flask, model: type[User] | type[Group], number: str) -> None:
    with db(app) as session:
        record: User | Group = (
            session.scalars(select(User).where(User.account_number == number)).one()
            if model is User
            else session.scalars(select(Group).where(Group.group_number == number)).one()
        )
        record.failed_attempts = 5
        record.lockouts = 3
        record.locked_until = utcnow() + timedelta(hours=1)
        session.commit()


def wipe(app: Flask) -> None:
    with db(app) as session:
        for model in (Membership, PhoneNumber, Group, User):
            session.execute(delete(model))
        session.commit()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- users -------------------------------------------------------------------


def test_users_add(app: Flask, runner: FlaskCliRunner, hasher: PinHasher) -> None:
    result = run(
        runner,
        "users",
        "add",
        "1001",
        "--name",
        "Ada Lovelace",
        "--pin",
        ADA_PIN,
        "--phone",
        "(312) 555-0101",
        "--phone",
        "+1 312 555 0199",
    )

    assert_ok(result, "added user 1001 (Ada Lovelace)\n")
    ada = get_user(app, "1001")
    assert (ada.name, ada.active, ada.failed_attempts) == ("Ada Lovelace", True, 0)
    assert [p.e164 for p in ada.phones] == ["+13125550101", "+13125550199"]
    assert hasher.verify(ADA_PIN, ada.pin_hash)
    assert ADA_PIN not in ada.pin_hash


def test_users_add_prompts_for_hidden_pin(
    app: Flask, runner: FlaskCliRunner, hasher: PinHasher
) -> None:
    result = run(runner, "users", "add", "1001", "--name", "Ada", input=f"{ADA_PIN}\n{ADA_PIN}\n")

    assert result.exit_code == 0, result.output
    assert "PIN: " in result.stdout
    assert "Repeat for confirmation: " in result.stdout
    assert ADA_PIN not in result.output  # hidden: not echoed
    assert hasher.verify(ADA_PIN, get_user(app, "1001").pin_hash)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1001", "--name", "Again", "--pin", GRACE_PIN], "Error: user 1001 already exists\n"),
        (["1002", "--name", "G", "--pin", GRACE_PIN, "--phone", "555"], "invalid phone number"),
        (
            ["1002", "--name", "G", "--pin", GRACE_PIN, "--phone", "312-555-0101"],
            "Error: phone +13125550101 is already registered to user 1001\n",
        ),
        (["1002", "--name", "G", "--pin", "135"], "Error: PIN must be 4-8 digits\n"),
        (["1002", "--name", "G", "--pin", "135713571"], "Error: PIN must be 4-8 digits\n"),
        (["1002", "--name", "G", "--pin", "13ab"], "Error: PIN must contain digits only\n"),
        (["10x", "--name", "G", "--pin", GRACE_PIN], "account number must be 1-32 digits"),
        (["1002", "--name", " ", "--pin", GRACE_PIN], "Error: name must not be empty\n"),
    ],
)
def test_users_add_rejects_bad_input(
    app: Flask, runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    add_ada(runner)
    before = snapshot(app)

    result = run(runner, "users", "add", *args)

    assert_error(result, message)
    assert snapshot(app) == before
    pin = args[args.index("--pin") + 1]
    assert pin not in result.output


def test_users_set_pin(app: Flask, runner: FlaskCliRunner, hasher: PinHasher) -> None:
    add_ada(runner)

    assert_ok(
        run(runner, "users", "set-pin", "1001", "--pin", GRACE_PIN), "PIN changed for user 1001\n"
    )
    assert hasher.verify(GRACE_PIN, get_user(app, "1001").pin_hash)

    result = run(runner, "users", "set-pin", "1001", input=f"{ADA_PIN}\n{ADA_PIN}\n")
    assert result.exit_code == 0, result.output
    assert ADA_PIN not in result.output
    assert hasher.verify(ADA_PIN, get_user(app, "1001").pin_hash)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1001", "--pin", "123"], "Error: PIN must be 4-8 digits\n"),
        (["1001", "--pin", "123456789"], "Error: PIN must be 4-8 digits\n"),
        (["1001", "--pin", "12a4"], "Error: PIN must contain digits only\n"),
        (["1002", "--pin", GRACE_PIN], "Error: no user with account number 1002\n"),
    ],
)
def test_users_set_pin_rejects_bad_input(
    app: Flask, runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    add_ada(runner)
    before = snapshot(app)

    result = run(runner, "users", "set-pin", *args)

    assert_error(result, message)
    assert snapshot(app) == before
    assert args[-1] not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-pin", "9999"], "Error: no user with account number 9999\n"),
        (["set-password", "9999"], "Error: no user with account number 9999\n"),
        (["add", "1001", "--name", "Again"], "Error: user 1001 already exists\n"),
        (["add", "1002", "--name", "G", "--phone", "555"], "invalid phone number"),
        (["add", "1002", "--name", " "], "Error: name must not be empty\n"),
    ],
)
def test_a_command_that_cannot_go_on_says_so_before_asking_for_a_secret(
    app: Flask, runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    add_ada(runner)
    before = snapshot(app)

    # What a person would type at the prompts, were there any.
    result = run(runner, "users", *args, input=f"{GRACE_PIN}\n{GRACE_PIN}\n")

    assert_error(result, message)  # and stdout is empty: no prompt was shown
    assert snapshot(app) == before


def test_users_disable_and_enable(app: Flask, runner: FlaskCliRunner) -> None:
    add_ada(runner)

    assert_ok(run(runner, "users", "disable", "1001"), "user 1001 disabled\n")
    assert get_user(app, "1001").active is False
    assert_ok(run(runner, "users", "enable", "1001"), "user 1001 enabled\n")
    assert get_user(app, "1001").active is True

    before = snapshot(app)
    for command in ("disable", "enable", "unlock"):
        result = run(runner, "users", command, "1002")
        assert_error(result, "Error: no user with account number 1002\n")
    assert snapshot(app) == before


def test_users_unlock(app: Flask, runner: FlaskCliRunner) -> None:
    add_ada(runner)
    lock(app, User, "1001")

    assert_ok(run(runner, "users", "unlock", "1001"), "user 1001 unlocked\n")

    ada = get_user(app, "1001")
    assert (ada.failed_attempts, ada.lockouts, ada.locked_until) == (0, 0, None)


def test_users_list(app: Flask, runner: FlaskCliRunner) -> None:
    assert_ok(run(runner, "users", "list"), "no users\n")
    add_ada(runner)
    result = run(
        runner,
        "users",
        "add",
        "20",
        "--name",
        "Grace Hopper",
        "--pin",
        GRACE_PIN,
        "--phone",
        "+13125550102",
        "--phone",
        "+13125550103",
    )
    assert_ok(result)
    assert_ok(run(runner, "users", "disable", "20"))
    lock(app, User, "20")
    locked_until = get_user(app, "20").locked_until
    assert locked_until is not None

    result = run(runner, "users", "list")

    assert_ok(result)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ACCOUNT", "NAME", "ACTIVE", "PHONES", "LOCKED", "UNTIL"]
    assert lines[1].split() == [
        "20",
        "Grace",
        "Hopper",
        "no",
        "+13125550102,",
        "+13125550103",
        f"{locked_until:%Y-%m-%d}",
        f"{locked_until:%H:%M:%S}",
        "UTC",
    ]
    assert lines[2].split() == ["1001", "Ada", "Lovelace", "yes", "+13125550101"]
    assert len(lines) == 3
    for secret in (ADA_PIN, GRACE_PIN, "hmac-sha256", get_user(app, "1001").pin_hash):
        assert secret not in result.output


# --- groups ------------------------------------------------------------------


def test_groups_add(app: Flask, runner: FlaskCliRunner, hasher: PinHasher) -> None:
    add_night_shift(runner)
    result = run(runner, "groups", "add", "501", "--name", "Day shift")

    assert_ok(result, "added group 501 (Day shift)\n")
    night = get_group(app, "500")
    assert night.name == "Night shift"
    assert [p.e164 for p in night.phones] == ["+13125550500"]
    assert hasher.verify(GROUP_PIN, night.pin_hash)
    assert GROUP_PIN not in (night.pin_hash or "")
    assert get_group(app, "501").pin_hash is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["500", "--name", "Again"], "Error: group 500 already exists\n"),
        (["5o1", "--name", "Day"], "group number must be 1-32 digits"),
        (["501", "--name", "Day", "--pin", "123"], "Error: PIN must be 4-8 digits\n"),
        (["501", "--name", "Day", "--pin", "123456789"], "Error: PIN must be 4-8 digits\n"),
        (["501", "--name", "Day", "--pin", "abcd"], "Error: PIN must contain digits only\n"),
        (["501", "--name", "Day", "--phone", "call me"], "invalid phone number"),
        (
            ["501", "--name", "Day", "--phone", "+13125550101"],
            "Error: phone +13125550101 is already registered to user 1001\n",
        ),
    ],
)
def test_groups_add_rejects_bad_input(
    app: Flask, runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    add_ada(runner)
    add_night_shift(runner)
    before = snapshot(app)

    result = run(runner, "groups", "add", *args)

    assert_error(result, message)
    assert snapshot(app) == before


def test_groups_add_member(app: Flask, runner: FlaskCliRunner) -> None:
    add_ada(runner)
    add_night_shift(runner)

    result = run(runner, "groups", "add-member", "500", "1001")

    assert_ok(result, "user 1001 added to group 500\n")
    members = [m.user.account_number for m in get_group(app, "500").memberships]
    assert members == ["1001"]

    before = snapshot(app)
    for args, message in [
        (["500", "1001"], "Error: user 1001 is already a member of group 500\n"),
        (["500", "1002"], "Error: no user with account number 1002\n"),
        (["501", "1001"], "Error: no group with number 501\n"),
    ]:
        assert_error(run(runner, "groups", "add-member", *args), message)
    assert snapshot(app) == before


def test_groups_list_and_unlock(app: Flask, runner: FlaskCliRunner) -> None:
    assert_ok(run(runner, "groups", "list"), "no groups\n")
    add_ada(runner)
    add_night_shift(runner)
    assert_ok(run(runner, "groups", "add", "501", "--name", "Day"))
    assert_ok(run(runner, "groups", "add-member", "500", "1001"))
    lock(app, Group, "500")

    result = run(runner, "groups", "list")

    assert_ok(result)
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NUMBER",
        "NAME",
        "ACTIVE",
        "OWN",
        "PIN",
        "MEMBERS",
        "PHONES",
        "LOCKED",
        "UNTIL",
    ]
    assert lines[1].split()[:7] == ["500", "Night", "shift", "yes", "yes", "1001", "+13125550500"]
    assert lines[1].endswith(" UTC")
    assert lines[2].split() == ["501", "Day", "yes", "no"]
    assert GROUP_PIN not in result.output
    assert "hmac-sha256" not in result.output

    assert_ok(run(runner, "groups", "unlock", "500"), "group 500 unlocked\n")
    night = get_group(app, "500")
    assert (night.failed_attempts, night.lockouts, night.locked_until) == (0, 0, None)
    assert_error(run(runner, "groups", "unlock", "502"), "Error: no group with number 502\n")


# --- import, export, demo ----------------------------------------------------

GOOD_YAML = f"""\
users:
  - account: "1001"
    name: Ada Lovelace
    pin: "{ADA_PIN}"
    phones: ["+13125550101"]
  - account: "1002"
    name: Grace Hopper
    pin: "{GRACE_PIN}"
groups:
  - number: "500"
    name: Night shift
    members: ["1001", "1002"]
"""

GOOD_CSV = f"""\
kind,number,name,pin,phones,members,active
user,1001,Ada Lovelace,{ADA_PIN},+13125550101,,
user,1002,Grace Hopper,{GRACE_PIN},,,
group,500,Night shift,,,1001;1002,
"""


@pytest.mark.parametrize(("name", "text"), [("d.yaml", GOOD_YAML), ("d.csv", GOOD_CSV)])
def test_directory_import(
    app: Flask,
    runner: FlaskCliRunner,
    hasher: PinHasher,
    tmp_path: Path,
    name: str,
    text: str,
) -> None:
    result = run(runner, "directory", "import", str(write(tmp_path, name, text)))

    assert_ok(result, "imported 2 users, 1 groups\n")
    assert hasher.verify(ADA_PIN, get_user(app, "1001").pin_hash)
    assert hasher.verify(GRACE_PIN, get_user(app, "1002").pin_hash)
    members = sorted(m.user.account_number for m in get_group(app, "500").memberships)
    assert members == ["1001", "1002"]
    assert ADA_PIN not in result.output


BAD_YAML = f"""\
users:
  - account: "1001"
    name: Ada Lovelace
    pin: "{ADA_PIN}"
  - account: "1002"
    name: Grace Hopper
    pin: "135"
  - account: "1001"
    name: Ada again
    pin: "{ADA_PIN}"
groups:
  - number: "500"
    name: Night shift
    phones: ["+1 312 555"]
"""

BAD_CSV = f"""\
kind,number,name,pin,phones,members,active
user,1001,Ada Lovelace,{ADA_PIN},,,
user,1002,Grace Hopper,135,,,
user,1001,Ada again,{ADA_PIN},,,
group,500,Night shift,,+1 312 555,,
"""


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [("bad.yaml", BAD_YAML, [5, 8, 12]), ("bad.csv", BAD_CSV, [3, 4, 5])],
)
def test_directory_import_reports_every_error_and_changes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, name: str, text: str, lines: list[int]
) -> None:
    assert_ok(run(runner, "users", "add", "2000", "--name", "Existing", "--pin", GRACE_PIN))
    before = snapshot(app)
    path = write(tmp_path, name, text)

    result = run(runner, "directory", "import", str(path))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:{lines[0]}: PIN must be 4-8 digits",
        f"{path}:{lines[1]}: user 1001 already exists",
        f"{path}:{lines[2]}: invalid phone number '+1 312 555'",
    ]
    assert snapshot(app) == before
    assert ADA_PIN not in result.output


def test_directory_import_unreadable_file(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    assert_error(run(runner, "directory", "import", str(missing)), "No such file or directory")
    json_file = write(tmp_path, "d.json", "{}")
    assert_error(run(runner, "directory", "import", str(json_file)), "expected a .csv, .yaml")
    assert snapshot(app)["users"] == []


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_directory_export_and_import_round_trip(
    app: Flask, runner: FlaskCliRunner, hasher: PinHasher, tmp_path: Path, fmt: str
) -> None:
    assert_ok(run(runner, "directory", "import", str(write(tmp_path, "d.yaml", GOOD_YAML))))
    assert_ok(run(runner, "groups", "add", "501", "--name", "Own PIN", "--pin", GROUP_PIN))
    assert_ok(run(runner, "users", "disable", "1002"))
    before = snapshot(app)
    path = tmp_path / f"export.{fmt}"

    result = run(runner, "directory", "export", "--format", fmt, "--output", str(path))

    assert_ok(result, f"exported the directory to {path}\n")
    stdout_export = run(runner, "directory", "export", "--format", fmt)
    assert_ok(stdout_export, path.read_text(encoding="utf-8"))
    for pin in (ADA_PIN, GRACE_PIN, GROUP_PIN):
        assert pin not in stdout_export.output

    wipe(app)
    assert_ok(run(runner, "directory", "import", str(path)), "imported 2 users, 2 groups\n")

    assert snapshot(app) == before
    assert hasher.verify(ADA_PIN, get_user(app, "1001").pin_hash)
    assert hasher.verify(GRACE_PIN, get_user(app, "1002").pin_hash)
    assert hasher.verify(GROUP_PIN, get_group(app, "501").pin_hash)


def test_directory_export_default_is_yaml(runner: FlaskCliRunner) -> None:
    add_ada(runner)
    result = run(runner, "directory", "export")
    assert_ok(result)
    assert result.stdout.startswith("users:\n- account: '1001'\n  name: Ada Lovelace\n")
    assert "pin_hash: hmac-sha256$" in result.stdout


def test_demo_load(app: Flask, runner: FlaskCliRunner, hasher: PinHasher) -> None:
    result = run(runner, "demo", "load")

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("demo/directory.yaml: imported 6 users, 1 groups\n")
    expected = {
        "1000": ("Demo Admin", "8080", True, [], "admin-demo-1"),  # the only admin
        "1001": ("Ada Lovelace", "2468", True, ["+13125550101"], "ada-demo-1"),
        "1002": ("Grace Hopper", "1357", True, ["+13125550102"], "grace-demo-1"),
        "1003": ("Patrick O'Brien & Sons <x>", "8642", True, ["+13125550103"], None),
        "1004": ("Disabled Demo", "9999", False, [], None),
        "1005": ("Linus Nophone", "3579", True, [], "linus-demo-1"),  # the missing-phone demo
    }
    for account, (name, pin, active, phones, password) in expected.items():
        user = get_user(app, account)
        assert (user.name, user.active, [p.e164 for p in user.phones]) == (name, active, phones)
        assert hasher.verify(pin, user.pin_hash)
        assert user.is_admin is (account == "1000")
        if password is None:
            assert user.password_hash is None
        else:
            assert verify_password(user.password_hash, password)
    night = get_group(app, "500")
    assert night.name == "Night shift"
    assert hasher.verify("5050", night.pin_hash)
    assert [p.e164 for p in night.phones] == ["+13125550500"]
    assert sorted(m.user.account_number for m in night.memberships) == ["1001", "1002"]

    before = snapshot(app)
    again = run(runner, "demo", "load")
    assert_ok(again, "demo not loaded: the directory already has users\n")
    assert snapshot(app) == before


def test_the_demo_admin_signs_in_to_the_admin_pages(app: Flask, runner: FlaskCliRunner) -> None:
    assert_ok(run(runner, "demo", "load"))
    admin, user = app.test_client(), app.test_client()

    assert sign_in(admin, "1000", "admin-demo-1").status_code == 302
    page = admin.get("/admin/")
    assert page.status_code == 200
    assert lxml.html.fromstring(page.get_data(as_text=True)).xpath("//h1")

    sign_in(user, "1001", "ada-demo-1")
    assert user.get("/admin/").status_code == 403


@pytest.fixture
def live_demo(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The demo on a real server, its IfbyPhone key generated into its instance
    folder as on a fresh checkout (not given by the environment)."""
    database = tmp_path / "live.db"
    shutil.copy(sqlite_template, database)
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "IFBYPHONE_SECRET"}
    config = {"TESTING": True, "DATABASE_URL": f"sqlite:///{database}", **secrets}
    app = create_app(config, instance_path=str(tmp_path / "live-instance"))
    assert_ok(app.test_cli_runner().invoke(args=["demo", "load"]))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["glue.engine"].dispose()


def test_demo_info_says_where_to_go_whom_to_sign_in_as_and_a_call_that_works(
    live_demo: tuple[Flask, str],
) -> None:
    app, base = live_demo
    result = app.test_cli_runner().invoke(args=["demo", "info", "--url", base + "/"])
    assert_ok(result)
    lines = result.stdout.splitlines()

    assert lines[0] == f"Glue at {base}"
    assert lines[1] == f"  Sign in at {base}/login as:"
    logins = [line.split() for line in lines if " / " in line]
    assert [(login[0], login[2]) for login in logins] == [
        ("1000", "admin-demo-1"),
        ("1001", "ada-demo-1"),
        ("1002", "grace-demo-1"),
        ("1005", "linus-demo-1"),
    ]
    assert [line for line in lines if ", an admin" in line] == [
        f"    1000 / admin-demo-1  Demo Admin, an admin: {base}/admin/"
    ]
    assert "  Make any user an admin: flask users make-admin ACCOUNT" in lines
    (activate,) = [line for line in lines if line.startswith("  To use flask in another shell: . ")]
    script = Path(activate.rpartition(". ")[2])  # as said from the current folder
    assert script.resolve() == (Path(sys.prefix) / "bin" / "activate").resolve()
    assert app.config["IFBYPHONE_SECRET"] not in result.output  # read when run, never shown

    # Each login signs in; the admin's opens the admin pages, the others' do not.
    for account, _, password, *_ in logins:
        client = app.test_client()
        assert sign_in(client, account, password).location == "/"
        admin_pages = client.get("/admin/")
        assert admin_pages.status_code == (200 if account == "1000" else 403)

    # The first call, run as printed, is Ada verified by IfbyPhone.
    (curl,) = [line.strip() for line in lines if line.strip().startswith("curl ")]
    for _ in range(2):  # a new call each time
        run = subprocess.run(["bash", "-c", curl], capture_output=True, timeout=30, check=True)
        reply = etree.fromstring(run.stdout)
        assert reply.findtext("app") == "survo"
        assert reply.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."


def test_demo_info_names_the_environment_key_and_never_prints_a_secret(
    runner: FlaskCliRunner,
) -> None:
    assert_ok(run(runner, "demo", "load"))
    result = run(runner, "demo", "info")
    assert_ok(result)
    assert result.stdout.startswith("Glue at http://127.0.0.1:5000\n")
    assert '/ifbyphone/verify_caller?key=$GLUE_IFBYPHONE_SECRET"' in result.stdout
    for secret in TEST_SECRETS.values():
        assert secret not in result.stdout


def test_demo_info_shows_only_logins_that_work_here(app: Flask, runner: FlaskCliRunner) -> None:
    assert_ok(run(runner, "demo", "load"))
    assert_ok(run(runner, "users", "set-password", "1000", "--password", "changed-since"))
    assert_ok(run(runner, "users", "disable", "1002"))
    assert_ok(run(runner, "users", "set-pin", "1001", "--pin", ADA_PIN))

    result = run(runner, "demo", "info")
    assert_ok(result)
    shown = [line.split()[0] for line in result.stdout.splitlines() if " / " in line]
    assert shown == ["1001", "1005"]
    assert "account 1001, PIN 2468" not in result.stdout  # Ada's PIN is not the demo's now
    assert "(Patrick O'Brien & Sons <x>: account 1003, PIN 8642)" in result.stdout


def test_demo_info_without_the_demo_offers_no_login(runner: FlaskCliRunner) -> None:
    add_ada(runner)
    result = run(runner, "demo", "info")
    assert_ok(result)
    assert " / " not in result.stdout and "curl" not in result.stdout
    assert "No demo login works here: flask users set-password ACCOUNT gives one." in result.stdout


def test_demo_load_leaves_an_existing_directory_alone(app: Flask, runner: FlaskCliRunner) -> None:
    add_ada(runner)
    before = snapshot(app)
    assert_ok(run(runner, "demo", "load"), "demo not loaded: the directory already has users\n")
    assert snapshot(app) == before


# --- one PIN policy: what the flows can take ---------------------------------

NINE_DIGITS = "135713571"
NO_FLOW_TAKES_NINE = (
    "Error: no flow can take a 9-digit PIN (their PIN questions take: "
    "group_line 4-8, verify_caller 4-8 digits)\n"
)


def test_pins_longer_than_the_shipped_flows_take_are_refused_by_default(
    app: Flask, runner: FlaskCliRunner
) -> None:
    add_ada(runner)
    before = snapshot(app)
    for args in (
        ["users", "add", "1002", "--name", "Grace", "--pin", NINE_DIGITS],
        ["users", "set-pin", "1001", "--pin", NINE_DIGITS],
        ["groups", "add", "501", "--name", "Day", "--pin", NINE_DIGITS],
    ):
        result = run(runner, *args)
        assert_error(result, "Error: PIN must be 4-8 digits\n")
        assert NINE_DIGITS not in result.output
    assert snapshot(app) == before


def test_a_policy_wider_than_the_flows_still_refuses_a_pin_no_flow_can_take(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    app.config["PIN_MAX_LENGTH"] = 10  # an admin widened the policy, not the flows
    add_ada(runner)
    before = snapshot(app)
    for args in (
        ["users", "add", "1002", "--name", "Grace", "--pin", NINE_DIGITS],
        ["users", "set-pin", "1001", "--pin", NINE_DIGITS],
    ):
        result = run(runner, *args)
        assert_error(result, NO_FLOW_TAKES_NINE)
        assert NINE_DIGITS not in result.output
    path = write(tmp_path, "d.csv", f"kind,number,name,pin\nuser,1002,Grace,{NINE_DIGITS}\n")
    result = run(runner, "directory", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr == f"{path}:2: {NO_FLOW_TAKES_NINE.removeprefix('Error: ')}"
    assert snapshot(app) == before


def test_a_pin_one_flow_can_take_is_accepted(
    app: Flask, runner: FlaskCliRunner, hasher: PinHasher, tmp_path: Path
) -> None:
    flows_dir = shipped_copy(tmp_path / "flows")
    verify_caller = flows_dir / "verify_caller.yaml"
    text = verify_caller.read_text()
    assert text.count("    max_digits: 8\n") == 1  # the PIN question's
    verify_caller.write_text(text.replace("    max_digits: 8\n", "    max_digits: 10\n"))
    app.config.update(FLOWS_DIR=str(flows_dir), PIN_MAX_LENGTH=10)

    assert_ok(run(runner, "users", "add", "1002", "--name", "Grace", "--pin", NINE_DIGITS))
    assert hasher.verify(NINE_DIGITS, get_user(app, "1002").pin_hash)
