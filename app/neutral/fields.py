"""Field types and error helpers shared by the flow schema and the platforms'
settings schemas (each platform's block is validated by its dialect module)."""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from typing import Any

from marshmallow import Schema, ValidationError, fields

from app.neutral.phones import PhoneError, to_e164

# IfbyPhone sends parameters as XML elements, so names must be safe element names.
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9_.*#-]{1,64}$")
_NUMERIC_ID = re.compile(r"^[0-9]{1,20}$")
# A context name as VoipNow shows it: any printable text.
_CONTEXT = re.compile(r"[^\x00-\x1f\x7f]{1,80}")

DataPath = tuple[str | int, ...]  # keys and list indexes, as in marshmallow's messages
Errors = dict[Any, Any]


def template_fields(text: str) -> list[str]:
    """The `{field}` names a message template uses; ValueError if it is malformed."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"write placeholders as {{field}}, not {{{name}...}}")
        names.append(name)
    return names


class Message(str):
    """An error message with a fix hint for the admin. marshmallow keeps the message
    objects it is given, so the hint reaches the loader, which puts it in Problem.hint."""

    hint: str

    def __new__(cls, text: str, hint: str = "") -> Message:
        self = super().__new__(cls, text)
        self.hint = hint
        return self


def listing(label: str, names: Sequence[str], given: str | None = None) -> str:
    """A hint naming what may be written here, with a guess at a misspelt given."""
    close = difflib.get_close_matches(given, names, n=1) if given else []
    guess = f"did you mean {close[0]}? " if close else ""
    return f"{guess}{label}: {', '.join(names)}" if names else f"{guess}{label}: none"


def add_error(errors: Errors, path: DataPath, message: str) -> None:
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], []).append(message)


class Id(fields.Field[str]):
    """A platform id (form, menu, box, list), written as a number or text; kept as text."""

    default_error_messages = {
        "invalid": "must be an id: letters, digits, and _ . * # -",
        "numeric": "must be a numeric id",
    }

    hints = {
        "invalid": "write it as the platform shows it, e.g. 4200 or sales_menu",
        "numeric": "write the number the platform shows, e.g. 4200",
    }

    def __init__(self, *, numeric: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric = numeric

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if not isinstance(value, str):
            raise self._error("numeric" if self.numeric else "invalid")
        if self.numeric and not (_NUMERIC_ID.fullmatch(value) and int(value) > 0):
            raise self._error("numeric")
        if not _ID.fullmatch(value):
            raise self._error("invalid")
        return value

    def _error(self, key: str) -> ValidationError:
        return ValidationError(Message(str(self.error_messages[key]), self.hints[key]))


def template(value: Any) -> str:
    """Text for a message or a parameter: may hold `{field}` placeholders."""
    if not isinstance(value, str):
        raise ValidationError(Message("Not a valid string.", 'put the text in "double quotes"'))
    if not value:
        raise ValidationError(Message("must not be empty", "write the text, or delete the step"))
    try:
        template_fields(value)
    except ValueError as exc:
        hint = "write a field as {name}; for a literal brace write {{ or }}"
        raise ValidationError(Message(str(exc), hint)) from None
    return value


class Params(fields.Field[dict[str, str]]):
    """user_parameters of a survo step: name -> template."""

    default_error_messages = {"invalid": "must be a mapping of name: text"}

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if not isinstance(value, dict):
            hint = 'e.g. user_parameters: {who: "{name}"}'
            raise ValidationError(Message(str(self.error_messages["invalid"]), hint))
        params: dict[str, str] = {}
        errors: Errors = {}
        for key, text in value.items():
            if not (isinstance(key, str) and PARAMETER_NAME.fullmatch(key)):
                errors[str(key)] = [Message("must be a name: letters, digits and _", "e.g. who")]
                continue
            try:
                params[key] = template(text)
            except ValidationError as exc:
                errors[key] = exc.messages
        if errors:
            raise ValidationError(errors)
        return params


class StrictSchema(Schema):
    error_messages = {"unknown": "unknown key", "type": "must be a mapping of key: value"}


PHONE_HINT = 'write it with its area code, in quotes: "+13125551212" or "(312) 555-1212"'


def phone(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(Message("must be a phone number", PHONE_HINT))
    try:
        return to_e164(str(value), "US")
    except PhoneError as exc:
        raise ValidationError(Message(str(exc), PHONE_HINT)) from None


class Phone(fields.Field[str]):
    """A phone number, written as a person would; kept in E.164."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return phone(value)


class Context(fields.Field[str]):
    """A VoipNow IVR context, by name or number; kept as text."""

    default_error_messages = {"invalid": "must be an IVR context name or number"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if not (isinstance(value, str) and _CONTEXT.fullmatch(value) and value.strip()):
            hint = "write the context's name or number as VoipNow shows it, e.g. glue_ask"
            raise ValidationError(Message(str(self.error_messages["invalid"]), hint))
        return value
