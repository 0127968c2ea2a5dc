"""The directory service and its import/export, on both database backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.directory import service
from app.directory.import_export import (
    DirectoryImportError,
    ImportSummary,
    RowError,
    export_directory,
    import_directory,
)
from app.directory.pins import PinHasher, PinPolicy, get_hasher
from app.directory.service import DirectoryError
from app.models import Group, Membership, PhoneNumber, User, utcnow

POLICY = PinPolicy()  # the default: what the shipped flows take
REGION = "US"
# Eight digits, the most the default policy allows: a 4-digit PIN could turn up
# in a hex hash by chance.
LONG_PIN = "86753091"


@pytest.fixture
def hasher(app: Flask) -> PinHasher:
    with app.app_context():
        return get_hasher()


def snapshot(session: Session) -> dict[str, Any]:
    """Every directory row in a comparable form (no ids or creation times)."""
    users = session.scalars(select(User)).all()
    groups = session.scalars(select(Group)).all()
    return {
        "users": sorted(
            (
                u.account_number,
                u.name,
                u.pin_hash,
                u.active,
                u.is_admin,
                u.failed_attempts,
                u.lockouts,
                u.locked_until,
                tuple(p.e164 for p in u.phones),
            )
            for u in users
        ),
        "groups": sorted(
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
            for g in groups
        ),
        "phones": session.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.e164)).all(),
        "memberships": len(session.scalars(select(Membership)).all()),
    }


def add_ada(session: Session, hasher: PinHasher, pin: str = "2468") -> User:
    return service.add_user(
        session, hasher, POLICY, "1001", "Ada Lovelace", pin, ["+13125550101"], REGION
    )


def user(session: Session, account: str) -> User:
    return session.scalars(select(User).where(User.account_number == account)).one()


def group(session: Session, number: str) -> Group:
    return session.scalars(select(Group).where(Group.group_number == number)).one()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- users -------------------------------------------------------------------


def test_add_user_stores_hash_and_e164_phones(session: Session, hasher: PinHasher) -> None:
    service.add_user(
        session,
        hasher,
        POLICY,
        "1001",
        "  Ada Lovelace ",
        LONG_PIN,
        ["(312) 555-0101", "312.555.0199"],
        REGION,
    )
    session.commit()

    ada = user(session, "1001")
    assert ada.name == "Ada Lovelace"
    assert ada.active is True
    assert [p.e164 for p in ada.phones] == ["+13125550101", "+13125550199"]
    assert hasher.verify(LONG_PIN, ada.pin_hash)
    assert not hasher.verify("2468", ada.pin_hash)
    assert LONG_PIN not in ada.pin_hash


def test_service_never_commits(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    session.rollback()
    assert session.scalars(select(User)).all() == []


@pytest.mark.parametrize(
    ("account", "name", "pin", "phones", "message"),
    [
        ("12a", "Ada", "2468", [], "account number must be 1-32 digits, got '12a'"),
        ("", "Ada", "2468", [], "account number must be 1-32 digits"),
        ("1" * 33, "Ada", "2468", [], "account number must be 1-32 digits"),
        ("١٢٣", "Ada", "2468", [], "account number must be 1-32 digits"),  # non-ASCII digits
        ("1001", "", "2468", [], "name must not be empty"),
        ("1001", "   ", "2468", [], "name must not be empty"),
        ("1001", "x" * 201, "2468", [], "name must be at most 200 characters"),
        ("1001", "Ada\nEvil", "2468", [], "name must not contain control characters"),
        ("1001", "Ada", "123", [], "PIN must be 4-8 digits"),
        ("1001", "Ada", "123456789", [], "PIN must be 4-8 digits"),
        ("1001", "Ada", "12ab", [], "PIN must contain digits only"),
        ("1001", "Ada", "", [], "PIN must contain digits only"),
        ("1001", "Ada", "2468", ["not a phone"], "invalid phone number 'not a phone'"),
        ("1001", "Ada", "2468", ["+1312555"], "invalid phone number"),
        (
            "1001",
            "Ada",
            "2468",
            ["+13125550101", "(312) 555-0101"],
            "phone +13125550101 is given twice",
        ),
    ],
)
def test_add_user_rejects_bad_input(
    session: Session,
    hasher: PinHasher,
    account: str,
    name: str,
    pin: str,
    phones: list[str],
    message: str,
) -> None:
    with pytest.raises(DirectoryError) as caught:
        service.add_user(session, hasher, POLICY, account, name, pin, phones, REGION)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert snapshot(session)["users"] == []
    assert snapshot(session)["phones"] == []


def test_add_user_accepts_limits(session: Session, hasher: PinHasher) -> None:
    service.add_user(session, hasher, POLICY, "1" * 32, "x" * 200, "1234", [], REGION)
    service.add_user(session, hasher, POLICY, "7", "Seven", "12345678", [], REGION)
    session.commit()
    assert len(snapshot(session)["users"]) == 2


def test_add_user_rejects_duplicate_account(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    session.commit()
    before = snapshot(session)
    with pytest.raises(DirectoryError, match=r"^user 1001 already exists$"):
        service.add_user(session, hasher, POLICY, "1001", "Other", "1357", [], REGION)
    assert snapshot(session) == before


def test_add_user_rejects_phone_of_another_user_or_group(
    session: Session, hasher: PinHasher
) -> None:
    add_ada(session, hasher)
    service.add_group(session, hasher, POLICY, "500", "Night", None, ["+13125550500"], REGION)
    session.commit()
    before = snapshot(session)
    with pytest.raises(DirectoryError, match="already registered to user 1001"):
        service.add_user(session, hasher, POLICY, "1002", "Grace", "1357", ["3125550101"], REGION)
    with pytest.raises(DirectoryError, match="already registered to group 500"):
        service.add_user(session, hasher, POLICY, "1002", "Grace", "1357", ["3125550500"], REGION)
    assert snapshot(session) == before


def test_set_pin(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    session.commit()
    service.set_pin(session, hasher, POLICY, "1001", LONG_PIN)
    session.commit()
    ada = user(session, "1001")
    assert hasher.verify(LONG_PIN, ada.pin_hash)
    assert not hasher.verify("2468", ada.pin_hash)


def test_set_pin_rejects_bad_pin_and_unknown_user(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    session.commit()
    before = snapshot(session)
    with pytest.raises(DirectoryError, match="PIN must be 4-8 digits"):
        service.set_pin(session, hasher, POLICY, "1001", "123")
    with pytest.raises(DirectoryError, match=r"^no user with account number 1002$"):
        service.set_pin(session, hasher, POLICY, "1002", "1357")
    assert snapshot(session) == before


def test_disable_and_enable_user(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    service.disable_user(session, "1001")
    session.commit()
    assert user(session, "1001").active is False
    service.enable_user(session, "1001")
    session.commit()
    assert user(session, "1001").active is True
    with pytest.raises(DirectoryError, match="no user with account number 9"):
        service.disable_user(session, "9")


def test_unlock_resets_counters(session: Session, hasher: PinHasher) -> None:
    ada = add_ada(session, hasher)
    night = service.add_group(session, hasher, POLICY, "500", "Night", "5050", [], REGION)
    for record in (ada, night):
        record.failed_attempts = 5
        record.lockouts = 2
        record.locked_until = utcnow() + timedelta(hours=1)
    session.commit()

    service.unlock(session, "user", "1001")
    service.unlock(session, "group", "500")
    session.commit()

    for record in (user(session, "1001"), group(session, "500")):
        assert (record.failed_attempts, record.lockouts, record.locked_until) == (0, 0, None)
    with pytest.raises(DirectoryError, match="unknown kind 'team'"):
        service.unlock(session, "team", "500")  # type: ignore[arg-type]
    with pytest.raises(DirectoryError, match="no group with number 501"):
        service.unlock(session, "group", "501")


def test_list_users_in_numeric_order(session: Session, hasher: PinHasher) -> None:
    for account in ("20", "100", "3"):
        service.add_user(session, hasher, POLICY, account, f"User {account}", "1234", [], REGION)
    assert [u.account_number for u in service.list_users(session)] == ["3", "20", "100"]


# --- groups ------------------------------------------------------------------


def test_add_group_with_and_without_pin(session: Session, hasher: PinHasher) -> None:
    service.add_group(
        session, hasher, POLICY, "500", "Night shift", LONG_PIN, ["3125550500"], REGION
    )
    service.add_group(session, hasher, POLICY, "501", "Day shift", None, [], REGION)
    session.commit()
    night = group(session, "500")
    assert hasher.verify(LONG_PIN, night.pin_hash)
    assert LONG_PIN not in (night.pin_hash or "")
    assert [p.e164 for p in night.phones] == ["+13125550500"]
    assert group(session, "501").pin_hash is None


@pytest.mark.parametrize(
    ("number", "pin", "phones", "message"),
    [
        ("5x", None, [], "group number must be 1-32 digits"),
        ("500", "123", [], "PIN must be 4-8 digits"),
        ("500", None, ["nope"], "invalid phone number"),
        ("500", None, ["+13125550101"], "already registered to user 1001"),
        ("400", None, [], "group 400 already exists"),
    ],
)
def test_add_group_rejects_bad_input(
    session: Session,
    hasher: PinHasher,
    number: str,
    pin: str | None,
    phones: list[str],
    message: str,
) -> None:
    add_ada(session, hasher)
    service.add_group(session, hasher, POLICY, "400", "Existing", None, [], REGION)
    session.commit()
    before = snapshot(session)
    with pytest.raises(DirectoryError, match=message):
        service.add_group(session, hasher, POLICY, number, "Night", pin, phones, REGION)
    assert snapshot(session) == before


def test_add_member(session: Session, hasher: PinHasher) -> None:
    add_ada(session, hasher)
    service.add_group(session, hasher, POLICY, "500", "Night", None, [], REGION)
    service.add_member(session, "500", "1001")
    session.commit()
    assert [m.user.account_number for m in group(session, "500").memberships] == ["1001"]

    before = snapshot(session)
    with pytest.raises(DirectoryError, match=r"^user 1001 is already a member of group 500$"):
        service.add_member(session, "500", "1001")
    with pytest.raises(DirectoryError, match=r"^no group with number 501$"):
        service.add_member(session, "501", "1001")
    with pytest.raises(DirectoryError, match=r"^no user with account number 1002$"):
        service.add_member(session, "500", "1002")
    assert snapshot(session) == before


# --- import ------------------------------------------------------------------

GOOD_YAML = """\
users:
  - account: 1001
    name: Ada Lovelace
    pin: 0123
    phones: ["(312) 555-0101"]
  - {account: 0042, name: "Patrick O'Brien & Sons <x>", pin: "2468", active: false}
groups:
  - number: 500
    name: Night shift
    pin: 5050
    phones: [+13125550500]
    members: [1001, 0042]
  - number: 501
    name: No PIN
"""

GOOD_CSV = """\
kind,number,name,pin,phones,members,active
group,500,Night shift,5050,+13125550500,1001;0042,
user,1001,Ada Lovelace,0123,(312) 555-0101,,true
user,0042,"Patrick O'Brien & Sons <x>",2468,,,false
group,501,No PIN,,,,
"""


@pytest.mark.parametrize(("name", "text"), [("d.yaml", GOOD_YAML), ("d.csv", GOOD_CSV)])
def test_import_adds_users_groups_and_members(
    session: Session, hasher: PinHasher, tmp_path: Path, name: str, text: str
) -> None:
    summary = import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))
    session.commit()

    assert summary == ImportSummary(users=2, groups=2)
    ada, patrick = user(session, "1001"), user(session, "0042")  # leading zero kept
    assert hasher.verify("0123", ada.pin_hash)  # not read as the octal number 83
    assert [p.e164 for p in ada.phones] == ["+13125550101"]
    assert (patrick.name, patrick.active) == ("Patrick O'Brien & Sons <x>", False)
    night = group(session, "500")
    assert hasher.verify("5050", night.pin_hash)
    assert sorted(m.user.account_number for m in night.memberships) == ["0042", "1001"]
    assert group(session, "501").pin_hash is None


BAD_YAML = """\
users:
  - account: "1001"
    name: Ada Lovelace
    pin: "2468"
    phones: ["+13125550101"]
  - account: "12a"
    name: Bad account
    pin: "1357"
  - account: "1003"
    name: Short PIN
    pin: "123"
  - account: "1001"
    name: Duplicate in file
    pin: "1357"
  - account: "2000"
    name: Already in database
    pin: "1357"
  - account: "1006"
    name: Phone of Ada
    pin: "1357"
    phones: ["312-555-0101"]
  - account: "1007"
    name: Bad phone
    pin: "1357"
    phones: ["555"]
  - account: "1008"
    name: Typo
    pim: "1357"
  - just a string
groups:
  - number: "500"
    name: Night shift
    members: ["1003", "1001", "9999"]
"""

BAD_YAML_ERRORS = [
    (6, "account number must be 1-32 digits, got '12a'"),
    (9, "PIN must be 4-8 digits"),
    (12, "user 1001 already exists"),
    (15, "user 2000 already exists"),
    (18, "phone +13125550101 is already registered to user 1001"),
    (22, "invalid phone number '555'"),
    (26, "unknown field 'pim' for a user"),
    (29, "each user must be a mapping of fields"),
    # 1003 is not reported again: its own row failed.
    (31, "no user with account number 9999"),
]

BAD_CSV = """\
kind,number,name,pin,phones,members,active
user,1001,Ada Lovelace,2468,+13125550101,,
user,12a,Bad account,1357,,,
user,1003,Short PIN,123,,,

user,1001,Duplicate in file,1357,,,
user,2000,Already in database,1357,,,
user,1006,Phone of Ada,1357,312-555-0101,,
user,1007,Bad phone,1357,555,,
person,1008,Bad kind,1357,,,
user,1009,Bad active,1357,,,maybe
user,1010,Members,1357,,1001,
user,1011,Too few fields
group,500,Night shift,,,1003;1001;9999,
"""

BAD_CSV_ERRORS = [
    (3, "account number must be 1-32 digits, got '12a'"),
    (4, "PIN must be 4-8 digits"),
    (6, "user 1001 already exists"),
    (7, "user 2000 already exists"),
    (8, "phone +13125550101 is already registered to user 1001"),
    (9, "invalid phone number '555'"),
    (10, "kind must be user or group, got 'person'"),
    (11, "active must be true or false"),
    (12, "a user cannot have members"),
    (13, "expected 7 fields, found 3"),
    (14, "no user with account number 9999"),
]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [("bad.yaml", BAD_YAML, BAD_YAML_ERRORS), ("bad.csv", BAD_CSV, BAD_CSV_ERRORS)],
)
def test_import_reports_every_bad_row_and_writes_nothing(
    session: Session,
    hasher: PinHasher,
    tmp_path: Path,
    name: str,
    text: str,
    expected: list[tuple[int, str]],
) -> None:
    service.add_user(session, hasher, POLICY, "2000", "Existing", "1357", [], REGION)
    session.commit()
    before = snapshot(session)

    with pytest.raises(DirectoryImportError) as caught:
        import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))

    errors = caught.value.errors
    assert [error.line for error in errors] == [line for line, _ in expected]
    for error, (_, message) in zip(errors, expected, strict=True):
        assert message in error.message
        assert "\n" not in error.message
    assert snapshot(session) == before  # not even the valid 1001 row


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('name: Ada, pin: "2468", pin_hash: "hmac-sha256$aa$bb"', "give pin or pin_hash, not both"),
        ("name: Ada", "pin or pin_hash is required"),
        ('name: Ada, pin_hash: "sha1$x$y"', "pin_hash is not a PIN hash"),
        ('pin: "2468"', "name is missing"),
        ('name: [A, B], pin: "2468"', "name must be text"),
        ('name: Ada, pin: "2468", phones: "+13125550101"', "phones must be a list"),
        ('name: Ada, pin: "2468", active: maybe', "active must be true or false"),
        ('name: Ada, name: Eve, pin: "2468"', "field 'name' given twice"),
        ('name: Ada, pin: "2468", admin: "yes"', "admin must be true or false"),
    ],
)
def test_import_yaml_field_rules(
    session: Session, hasher: PinHasher, tmp_path: Path, fields: str, message: str
) -> None:
    path = write(tmp_path, "d.yml", f'users:\n  - {{account: "1001", {fields}}}\n')
    with pytest.raises(DirectoryImportError) as caught:
        import_directory(session, hasher, POLICY, REGION, path)
    assert caught.value.errors == [RowError(2, caught.value.errors[0].message)]
    assert message in caught.value.errors[0].message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("d.yaml", "users:\n  - account: [1\n", RowError(3, "not valid YAML")),
        ("d.yaml", "- a\n- b\n", RowError(1, "expected 'users' and 'groups' lists")),
        ("d.yaml", "users: []\npeople: []\n", RowError(2, "unknown section 'people'")),
        ("d.yaml", "users: x\n", RowError(1, "users must be a list")),
        ("d.csv", "kind,number,name,pin,colour\n", RowError(1, "header must name columns")),
        ("d.csv", "kind,name,pin\n", RowError(1, "header must name columns")),
        ("d.csv", f'kind,number,name\nuser,1,"{"x" * 200_000}"\n', RowError(2, "not valid CSV")),
    ],
)
def test_import_reports_unreadable_files(
    session: Session, hasher: PinHasher, tmp_path: Path, name: str, text: str, expected: RowError
) -> None:
    with pytest.raises(DirectoryImportError) as caught:
        import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))
    [error] = caught.value.errors
    assert error.line == expected.line
    assert expected.message in error.message


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "d.yaml",
            'users:\n  - {account: "1000", name: Admin, pin: "8080", admin: true}\n'
            '  - {account: "1001", name: Ada, pin: "2468", admin: false}\n'
            '  - {account: "1002", name: Grace, pin: "1357"}\n',
        ),
        (
            "d.csv",
            "kind,number,name,pin,admin\nuser,1000,Admin,8080,true\n"
            "user,1001,Ada,2468,false\nuser,1002,Grace,1357,\n",
        ),
    ],
)
def test_import_makes_admins(
    session: Session, hasher: PinHasher, tmp_path: Path, name: str, text: str
) -> None:
    import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))
    session.commit()
    admins = {u.account_number: u.is_admin for u in session.scalars(select(User))}
    assert admins == {"1000": True, "1001": False, "1002": False}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("d.yaml", 'groups:\n  - {number: "500", name: N, admin: true}\n', "unknown field"),
        ("d.csv", "kind,number,name,admin\ngroup,500,N,true\n", "a group cannot be an admin"),
        ("d.csv", "kind,number,name,pin,admin\nuser,1,A,2468,maybe\n", "admin must be true"),
    ],
)
def test_import_refuses_bad_admin_fields(
    session: Session, hasher: PinHasher, tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(DirectoryImportError) as caught:
        import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))
    [error] = caught.value.errors
    assert (error.line, message in error.message) == (2, True), error


def test_import_empty_files_import_nothing(
    session: Session, hasher: PinHasher, tmp_path: Path
) -> None:
    for name, text in [("e.yaml", ""), ("e.csv", ""), ("f.yaml", "users:\ngroups:\n")]:
        summary = import_directory(session, hasher, POLICY, REGION, write(tmp_path, name, text))
        assert summary == ImportSummary(users=0, groups=0)


def test_import_rejects_unknown_extension_and_missing_file(
    session: Session, hasher: PinHasher, tmp_path: Path
) -> None:
    with pytest.raises(DirectoryError, match=r"expected a \.csv, \.yaml or \.yml file"):
        import_directory(session, hasher, POLICY, REGION, write(tmp_path, "d.json", "{}"))
    with pytest.raises(DirectoryError, match="No such file"):
        import_directory(session, hasher, POLICY, REGION, tmp_path / "missing.yaml")


# --- export ------------------------------------------------------------------

# Eight digits or more, so that none turns up by chance in a hex hash or a phone number.
PINS = {"1001": "24681357", "1002": LONG_PIN, "1003": "07070707", "500": "50505050"}


def build_directory(session: Session, hasher: PinHasher) -> None:
    service.add_user(
        session, hasher, POLICY, "1001", "Ada Lovelace", PINS["1001"], ["+13125550101"], REGION
    )
    service.add_user(
        session,
        hasher,
        POLICY,
        "1002",
        "Patrick O'Brien & Sons <x>",
        PINS["1002"],
        ["+13125550102", "+442079460018"],
        REGION,
    )
    service.add_user(session, hasher, POLICY, "1003", "Gone: away", PINS["1003"], [], REGION)
    service.disable_user(session, "1003")
    service.add_group(
        session, hasher, POLICY, "500", "Night shift", PINS["500"], ["+13125550500"], REGION
    )
    service.add_group(session, hasher, POLICY, "501", "No PIN", None, [], REGION)
    user(session, "1002").is_admin = True
    service.add_member(session, "500", "1002")
    service.add_member(session, "500", "1001")
    session.commit()


def wipe(session: Session) -> None:
    for model in (Membership, PhoneNumber, Group, User):
        session.execute(delete(model))
    session.commit()


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_export_then_import_round_trips_with_working_pins(
    session: Session, hasher: PinHasher, tmp_path: Path, fmt: str
) -> None:
    build_directory(session, hasher)
    before = snapshot(session)
    text = export_directory(session, fmt)
    for pin in PINS.values():
        assert pin not in text

    wipe(session)
    assert snapshot(session)["users"] == []
    summary = import_directory(session, hasher, POLICY, REGION, write(tmp_path, f"d.{fmt}", text))
    session.commit()

    assert summary == ImportSummary(users=3, groups=2)
    assert snapshot(session) == before
    for account in ("1001", "1002", "1003"):
        assert hasher.verify(PINS[account], user(session, account).pin_hash)
    assert hasher.verify(PINS["500"], group(session, "500").pin_hash)
    assert export_directory(session, fmt) == text


def test_export_formats(session: Session, hasher: PinHasher) -> None:
    build_directory(session, hasher)
    ada_hash = user(session, "1001").pin_hash

    csv_lines = export_directory(session, "csv").splitlines()
    header = "kind,number,name,pin_hash,phones,members,active,password_hash,admin"
    assert csv_lines[0] == header
    assert csv_lines[1] == f"user,1001,Ada Lovelace,{ada_hash},+13125550101,,true,,false"
    assert csv_lines[2].endswith(",true,,true")  # 1002, the admin
    night_hash = group(session, "500").pin_hash
    assert csv_lines[4] == f"group,500,Night shift,{night_hash},+13125550500,1001;1002,true,,"
    assert csv_lines[5] == "group,501,No PIN,,,,true,,"

    yaml_text = export_directory(session)
    assert "- account: '1001'\n  name: Ada Lovelace\n" in yaml_text
    assert f"  pin_hash: {ada_hash}\n" in yaml_text
    assert yaml_text.count("admin: true") == 1 and "admin: false" not in yaml_text
    with pytest.raises(DirectoryError, match="unknown format 'json'"):
        export_directory(session, "json")


def test_export_with_another_secret_does_not_verify(
    session: Session, hasher: PinHasher, tmp_path: Path
) -> None:
    """Hashes are keyed: an export only works on a server with the same PIN_SECRET."""
    build_directory(session, hasher)
    text = export_directory(session)
    wipe(session)
    import_directory(session, hasher, POLICY, REGION, write(tmp_path, "d.yaml", text))
    other = PinHasher("another-secret")
    assert not other.verify(PINS["1001"], user(session, "1001").pin_hash)
