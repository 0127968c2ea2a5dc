"""Import and export of the whole directory as YAML or CSV.

An import is all-or-nothing: every row is checked, every bad row is reported
with its line in the file, and if any is bad the session is rolled back.
Exports carry PIN hashes (clear PINs are never stored), which an import on a
server with the same PIN_SECRET accepts as they are. A user may have a web
`password` (hashed with argon2 on import), exported as its `password_hash`, and
may be an `admin` (the admin pages), exported too.

YAML::

    users:
      - {account: "1001", name: Ada, pin: "2468", phones: ["+13125550101"], active: true}
      - {account: "1000", name: Admin, pin: "8080", password: admin-pass, admin: true}
    groups:
      - {number: "500", name: Night shift, pin: "5050", phones: [], members: ["1001"]}

CSV: a header row naming the columns (any order) from kind, number, name, pin,
pin_hash, phones, members, active, password, password_hash, admin; kind is user
or group; phones and members are separated by ";"; an empty admin is false.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from app.auth.passwords import PasswordError, hash_password, looks_like_hash
from app.directory import service
from app.directory.pins import PinHasher, PinPolicy
from app.directory.service import DirectoryError
from app.models import Group, User

KINDS = ("user", "group")
# The YAML key that holds each kind's number.
NUMBER_KEY = {"user": "account", "group": "number"}
YAML_FIELDS = {
    "user": {
        "account",
        "name",
        "pin",
        "pin_hash",
        "phones",
        "active",
        "password",
        "password_hash",
        "admin",
    },
    "group": {"number", "name", "pin", "pin_hash", "phones", "members", "active"},
}
CSV_COLUMNS = (
    "kind",
    "number",
    "name",
    "pin",
    "pin_hash",
    "phones",
    "members",
    "active",
    "password",
    "password_hash",
    "admin",
)
CSV_REQUIRED = ("kind", "number", "name")
CSV_EXPORT_COLUMNS = (
    "kind",
    "number",
    "name",
    "pin_hash",
    "phones",
    "members",
    "active",
    "password_hash",
    "admin",
)
CSV_BOOLEANS = {
    "": True,
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


class DirectoryImportError(DirectoryError):
    """A file with bad rows; `errors` lists every one, in line order."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = sorted(errors, key=lambda error: error.line)
        super().__init__(f"{len(errors)} bad row(s), nothing imported")


@dataclass(frozen=True)
class ImportSummary:
    users: int
    groups: int


@dataclass
class Entry:
    """One user or group as read from a file, before the directory rules are applied."""

    line: int
    kind: str
    number: str
    name: str
    pin: str | None = None
    pin_hash: str | None = None
    phones: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    active: bool = True
    password: str | None = None  # web sign-in (users only)
    password_hash: str | None = None
    admin: bool = False  # may use the admin pages (users only)


def import_directory(
    session: Session, hasher: PinHasher, policy: PinPolicy, region: str, path: Path | str
) -> ImportSummary:
    """Add every user and group in a .csv/.yaml/.yml file, or nothing (session rolled back)."""
    path = Path(path)
    entries, errors = _read(path)
    try:
        summary = _apply(session, hasher, policy, region, entries, errors)
        if errors:
            raise DirectoryImportError(errors)
        return summary
    except BaseException:
        session.rollback()
        raise


def read_entries(path: Path | str) -> list[Entry]:
    """The users and groups of a file as written (clear PINs and passwords
    included), without touching the directory; DirectoryImportError if any is bad."""
    entries, errors = _read(Path(path))
    if errors:
        raise DirectoryImportError(errors)
    return entries


def export_directory(session: Session, fmt: str = "yaml") -> str:
    """The whole directory in a form `import_directory` reads back."""
    users = service.list_users(session)
    groups = service.list_groups(session)
    if fmt == "yaml":
        return _export_yaml(users, groups)
    if fmt == "csv":
        return _export_csv(users, groups)
    raise DirectoryError(f"unknown format {fmt!r}: expected yaml or csv")


# --- reading -----------------------------------------------------------------


def _read(path: Path) -> tuple[list[Entry], list[RowError]]:
    """The rows of a file that could be read, and the errors in the others."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise DirectoryError(f"{path}: expected a .csv, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets often add a BOM
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DirectoryError(f"{path}: {exc.strerror}") from None
    return _read_csv(text) if suffix == ".csv" else _read_yaml(text)


_TEXT_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")


class _Loader(yaml.SafeLoader):
    """Safe YAML where numbers and dates stay text: 0042 is an account, not 34; PIN 0123 not 83."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _TEXT_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _read_yaml(text: str) -> tuple[list[Entry], list[RowError]]:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise DirectoryImportError([_yaml_error(exc)]) from None
    except RecursionError:  # PyYAML composes recursively: [[[[... a few thousand deep
        raise DirectoryImportError([RowError(1, "not valid YAML: nested too deeply")]) from None
    if root is None:
        return [], []
    if not isinstance(root, yaml.MappingNode):
        raise DirectoryImportError([RowError(_line(root), "expected 'users' and 'groups' lists")])
    entries: list[Entry] = []
    errors: list[RowError] = []
    for key_node, items in root.value:
        section = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        kind = {"users": "user", "groups": "group"}.get(section or "")
        if kind is None:
            errors.append(RowError(_line(key_node), f"unknown section {section!r}"))
        elif isinstance(items, yaml.SequenceNode):
            _read_yaml_items(kind, items.value, entries, errors)
        elif items.tag != "tag:yaml.org,2002:null":  # an empty section is fine
            errors.append(RowError(_line(items), f"{section} must be a list"))
    return entries, errors


def _read_yaml_items(
    kind: str, nodes: list[yaml.Node], entries: list[Entry], errors: list[RowError]
) -> None:
    for node in nodes:
        try:
            entries.append(_yaml_entry(kind, node))
        except DirectoryError as exc:
            errors.append(RowError(_line(node), str(exc)))
        except yaml.YAMLError as exc:
            errors.append(_yaml_error(exc))


def _yaml_entry(kind: str, node: yaml.Node) -> Entry:
    if not isinstance(node, yaml.MappingNode):
        raise DirectoryError(f"each {kind} must be a mapping of fields")
    keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DirectoryError(f"field {duplicates[0]!r} given twice")
    data = _construct(node)
    unknown = sorted(str(key) for key in data if key not in YAML_FIELDS[kind])
    if unknown:
        raise DirectoryError(f"unknown field {unknown[0]!r} for a {kind}")
    number_key = NUMBER_KEY[kind]
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise DirectoryError("active must be true or false")
    admin = data.get("admin", False)
    if not isinstance(admin, bool):
        raise DirectoryError("admin must be true or false")
    return Entry(
        line=_line(node),
        kind=kind,
        number=_text(data, number_key),
        name=_text(data, "name"),
        pin=_optional_text(data, "pin"),
        pin_hash=_optional_text(data, "pin_hash"),
        phones=_text_list(data, "phones"),
        members=_text_list(data, "members"),
        active=active,
        password=_optional_text(data, "password"),
        password_hash=_optional_text(data, "password_hash"),
        admin=admin,
    )


def _construct(node: yaml.Node) -> dict[Any, Any]:
    loader = _Loader("")
    try:
        data: dict[Any, Any] = loader.construct_document(node)
    finally:
        loader.dispose()
    return data


def _text(data: dict[Any, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise DirectoryError(f"{key} is missing")
    if not isinstance(value, str):
        raise DirectoryError(f"{key} must be text")
    return value


def _optional_text(data: dict[Any, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _text_list(data: dict[Any, Any], key: str) -> list[str]:
    values = data.get(key) or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise DirectoryError(f"{key} must be a list of numbers")
    return values


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _yaml_error(exc: yaml.YAMLError) -> RowError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return RowError(mark.line + 1 if mark else 1, f"not valid YAML: {problem}")


def _read_csv(text: str) -> tuple[list[Entry], list[RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:  # e.g. a header cell past the csv module's field limit
        raise DirectoryImportError([RowError(1, f"not valid CSV: {exc}")]) from None
    if header is None:
        return [], []
    columns = [column.strip().lower() for column in header]
    _check_header(columns)
    entries: list[Entry] = []
    errors: list[RowError] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            try:
                entries.append(_csv_entry(reader.line_num, columns, row))
            except DirectoryError as exc:
                errors.append(RowError(reader.line_num, str(exc)))
    except csv.Error as exc:  # the rest of the file cannot be read reliably
        errors.append(RowError(reader.line_num, f"not valid CSV: {exc}"))
    return entries, errors


def _check_header(columns: list[str]) -> None:
    unknown = [column for column in columns if column not in CSV_COLUMNS]
    missing = [column for column in CSV_REQUIRED if column not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        expected = ",".join(CSV_COLUMNS)
        raise DirectoryImportError([RowError(1, f"header must name columns from {expected}")])


def _csv_entry(line: int, columns: list[str], row: list[str]) -> Entry:
    if len(row) != len(columns):
        raise DirectoryError(f"expected {len(columns)} fields, found {len(row)}")
    cells = {column: cell.strip() for column, cell in zip(columns, row, strict=True)}
    kind = cells["kind"].lower()
    if kind not in KINDS:
        raise DirectoryError(f"kind must be user or group, got {cells['kind']!r}")
    members = _split(cells.get("members", ""))
    if kind == "user" and members:
        raise DirectoryError("a user cannot have members")
    if kind == "group" and (cells.get("password") or cells.get("password_hash")):
        raise DirectoryError("a group cannot have a password")
    active = CSV_BOOLEANS.get(cells.get("active", "").lower())
    if active is None:
        raise DirectoryError("active must be true or false")
    admin_cell = cells.get("admin", "").lower()
    admin = CSV_BOOLEANS.get(admin_cell) if admin_cell else False  # empty: not an admin
    if admin is None:
        raise DirectoryError("admin must be true or false")
    if kind == "group" and admin:
        raise DirectoryError("a group cannot be an admin")
    return Entry(
        line=line,
        kind=kind,
        number=cells["number"],
        name=cells["name"],
        pin=cells.get("pin") or None,
        pin_hash=cells.get("pin_hash") or None,
        phones=_split(cells.get("phones", "")),
        members=members,
        active=active,
        password=cells.get("password") or None,
        password_hash=cells.get("password_hash") or None,
        admin=admin,
    )


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


# --- applying ----------------------------------------------------------------


def _apply(
    session: Session,
    hasher: PinHasher,
    policy: PinPolicy,
    region: str,
    entries: list[Entry],
    errors: list[RowError],
) -> ImportSummary:
    """Add the entries to the session, appending an error for each one that breaks a rule."""
    # Users first, so a group may list members defined anywhere in the file.
    failed_accounts: set[str] = set()
    users = groups = 0
    for entry in (e for e in entries if e.kind == "user"):
        try:
            _add_user(session, hasher, policy, region, entry)
            users += 1
        except DirectoryError as exc:
            errors.append(RowError(entry.line, str(exc)))
            failed_accounts.add(entry.number)
    for entry in (e for e in entries if e.kind == "group"):
        try:
            _add_group(session, hasher, policy, region, entry, failed_accounts)
            groups += 1
        except DirectoryError as exc:
            errors.append(RowError(entry.line, str(exc)))
    return ImportSummary(users=users, groups=groups)


def _add_user(
    session: Session, hasher: PinHasher, policy: PinPolicy, region: str, entry: Entry
) -> None:
    pin_hash = _pin_hash(hasher, policy, entry)
    if pin_hash is None:
        raise DirectoryError("pin or pin_hash is required")
    password_hash = _password_hash(entry)
    user = service.add_user_hashed(
        session, entry.number, entry.name, pin_hash, entry.phones, region, active=entry.active
    )
    user.password_hash = password_hash
    user.is_admin = entry.admin


def _add_group(
    session: Session,
    hasher: PinHasher,
    policy: PinPolicy,
    region: str,
    entry: Entry,
    failed_accounts: set[str],
) -> None:
    pin_hash = _pin_hash(hasher, policy, entry)
    service.add_group_hashed(
        session, entry.number, entry.name, pin_hash, entry.phones, region, active=entry.active
    )
    for account in entry.members:
        # A member whose own row failed is already reported there.
        if account not in failed_accounts:
            service.add_member(session, entry.number, account)


def _pin_hash(hasher: PinHasher, policy: PinPolicy, entry: Entry) -> str | None:
    if entry.pin is not None and entry.pin_hash is not None:
        raise DirectoryError("give pin or pin_hash, not both")
    if entry.pin is not None:
        return service.hash_pin(hasher, policy, entry.pin)
    if entry.pin_hash is not None:
        return service.check_pin_hash(entry.pin_hash)
    return None


def _password_hash(entry: Entry) -> str | None:
    if entry.password is not None and entry.password_hash is not None:
        raise DirectoryError("give password or password_hash, not both")
    if entry.password is not None:
        try:
            return hash_password(entry.password)
        except PasswordError as exc:
            raise DirectoryError(str(exc)) from None
    if entry.password_hash is not None and not looks_like_hash(entry.password_hash):
        raise DirectoryError("password_hash is not a password hash exported by Glue")
    return entry.password_hash


# --- writing -----------------------------------------------------------------


def _export_yaml(users: Iterable[User], groups: Iterable[Group]) -> str:
    document = {
        "users": [_user_record(user) for user in users],
        "groups": [_group_record(group) for group in groups],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _user_record(user: User) -> dict[str, Any]:
    record: dict[str, Any] = {
        "account": user.account_number,
        "name": user.name,
        "pin_hash": user.pin_hash,
    }
    if user.password_hash is not None:
        record["password_hash"] = user.password_hash
    record["phones"] = [phone.e164 for phone in user.phones]
    record["active"] = user.active
    if user.is_admin:
        record["admin"] = True
    return record


def _group_record(group: Group) -> dict[str, Any]:
    record: dict[str, Any] = {"number": group.group_number, "name": group.name}
    if group.pin_hash is not None:
        record["pin_hash"] = group.pin_hash
    record["phones"] = [phone.e164 for phone in group.phones]
    record["members"] = _member_accounts(group)
    record["active"] = group.active
    return record


def _member_accounts(group: Group) -> list[str]:
    accounts = [membership.user.account_number for membership in group.memberships]
    return sorted(accounts, key=lambda account: (len(account), account))


def _export_csv(users: Iterable[User], groups: Iterable[Group]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_EXPORT_COLUMNS)
    for user in users:
        phones = ";".join(phone.e164 for phone in user.phones)
        active = _csv_bool(user.active)
        row = ["user", user.account_number, user.name, user.pin_hash, phones, "", active]
        writer.writerow([*row, user.password_hash or "", _csv_bool(user.is_admin)])
    for group in groups:
        writer.writerow(
            [
                "group",
                group.group_number,
                group.name,
                group.pin_hash or "",
                ";".join(phone.e164 for phone in group.phones),
                ";".join(_member_accounts(group)),
                _csv_bool(group.active),
                "",
                "",
            ]
        )
    return out.getvalue()


def _csv_bool(value: bool) -> str:
    return "true" if value else "false"
