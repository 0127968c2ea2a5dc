"""The admin lists: calls, verification attempts and locks, searched and
filtered from the query string, paged, and streamed as CSV; times in the
admin's zone. The filtering is in listings.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from wtforms import DateField, Form, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp, ValidationError

from app.admin import listings, time_zones
from app.admin.csv_export import Column, rows
from app.admin.insight import admin_zone
from app.admin.overview import NO_OUTCOME
from app.admin.service import CLAIM_TYPES, Locks, admin_actions
from app.admin.views import UnlockForm, bp
from app.db import get_session
from app.dialects.registry import DIALECTS
from app.flows.loader import FLOW_NAME
from app.models import Call, Group, UnknownClaim, User, VerificationAttempt, utcnow
from app.neutral.outcomes import OUTCOMES

PLATFORMS = tuple(dialect.NAME for dialect in DIALECTS)
CALL_OUTCOMES = (*OUTCOMES, NO_OUTCOME)
ATTEMPT_OUTCOMES = ("verified", "rejected", "locked")
LOCK_KINDS = ("user", "group", "unknown")


def _choices(values: Sequence[str], anything: str) -> list[SelectChoice]:
    return [SelectChoice("", anything), *(SelectChoice(value) for value in values)]


def _plausible(_form: Form, field: DateField) -> None:
    """Dates near year 1 or 9999 cannot be moved between zones: not a date anyone filters by."""
    if field.data is not None and not 1900 <= field.data.year <= 9000:
        raise ValidationError("Choose a date between 1900 and 9000.")


class ListFilters(Form):
    """A list's search and filters, from the query string; dates in the admin's zone."""

    q = StringField("Search", validators=[Length(max=64)])
    flow = StringField(
        "Flow", validators=[Optional(), Regexp(FLOW_NAME, message="No such flow name.")]
    )
    platform = SelectField("Platform", choices=_choices(PLATFORMS, "Any"), default="")
    since = DateField("From", validators=[Optional(), _plausible])
    until = DateField("To", validators=[Optional(), _plausible])

    def to_filters(self, zone: ZoneInfo, **more: str) -> listings.Filters:
        return listings.Filters(
            q=(self.q.data or "").strip(),
            flow=self.flow.data or "",
            platform=self.platform.data or "",
            since=time_zones.utc_start(self.since.data, zone) if self.since.data else None,
            until=time_zones.utc_end(self.until.data, zone) if self.until.data else None,
            **more,
        )


class CallFilters(ListFilters):
    outcome = SelectField("Outcome", choices=_choices(CALL_OUTCOMES, "Any"), default="")


class AttemptFilters(ListFilters):
    outcome = SelectField("Outcome", choices=_choices(ATTEMPT_OUTCOMES, "Any"), default="")
    claim_type = SelectField("Claim", choices=_choices(CLAIM_TYPES, "Any"), default="")


class LockFilters(Form):
    q = StringField("Search", validators=[Length(max=64)])
    kind = SelectField("Kind", choices=_choices(LOCK_KINDS, "Any"), default="")
    since = DateField("Locked until from", validators=[Optional(), _plausible])
    until = DateField("to", validators=[Optional(), _plausible])


def _read(form: Form) -> Form:
    form.process(request.args)
    form.validate()
    return form


def _query() -> dict[str, Any]:
    """The request's query string, as url_for takes it (to link the same list)."""
    return dict(request.args.items())


def _page_number() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


def _csv(name: str, lines: Iterator[str]) -> Response:
    response = Response(lines, mimetype="text/csv")
    stamp = datetime.now(admin_zone()).strftime("%Y%m%d-%H%M")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _when(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """Stored times as the CSV writes them: ISO 8601 in `zone`, with its offset."""
    return lambda value: time_zones.local(value, zone).isoformat() if value else ""


def _stream(stmt: Any) -> Iterator[Any]:
    """A statement's rows, read in batches as the CSV is written out: in a
    session of their own, since the response outlives the request's."""
    make = current_app.extensions["glue.sessionmaker"]

    def records() -> Iterator[Any]:
        with make() as session:
            yield from session.scalars(stmt.execution_options(yield_per=500))

    return records()


def _list_context(form: Form, csv_endpoint: str) -> dict[str, Any]:
    query = {k: v for k, v in _query().items() if k != "page"}
    return {
        "filters": form,
        "query": query,
        "csv_url": url_for(csv_endpoint, **query),
        "zone": admin_zone(),
    }


def call_columns(zone: ZoneInfo) -> Sequence[Column[Call]]:
    when = _when(zone)
    return (
        ("id", lambda c: c.id),
        ("platform", lambda c: c.platform),
        ("call_id", lambda c: c.platform_call_id),
        ("caller", lambda c: c.caller_number),
        ("flow", lambda c: c.flow),
        ("flow_version", lambda c: c.flow_version),
        ("reached", lambda c: c.reached),
        ("outcome", lambda c: c.outcome),
        ("status", lambda c: c.status),
        ("platform_status", lambda c: c.platform_status),
        ("duration_seconds", lambda c: c.duration_seconds),
        ("started", lambda c: when(c.started_at)),
        ("ended", lambda c: when(c.ended_at)),
    )


@bp.get("/calls")
def calls() -> ResponseReturnValue:
    """Calls, newest first, as searched and filtered."""
    form = _read(CallFilters())
    context = _list_context(form, ".calls_csv")
    if form.errors:
        return render_template("admin/calls.html", page=None, **context), 400
    filters = form.to_filters(admin_zone(), outcome=form.outcome.data or "")
    page = listings.page_of(get_session(), listings.calls(filters), _page_number())
    return render_template("admin/calls.html", page=page, **context)


@bp.get("/calls.csv")
def calls_csv() -> ResponseReturnValue:
    """Every call the filters let through, as CSV."""
    form = _read(CallFilters())
    if form.errors:
        return redirect(url_for(".calls", **_query()))
    filters = form.to_filters(admin_zone(), outcome=form.outcome.data or "")
    records = _stream(listings.calls(filters))
    return _csv("calls", rows(records, call_columns(admin_zone())))


def attempt_columns(zone: ZoneInfo) -> Sequence[Column[VerificationAttempt]]:
    when = _when(zone)
    return (
        ("id", lambda a: a.id),
        ("claim_type", lambda a: a.claim_type),
        ("claimed", lambda a: a.claimed),
        ("outcome", lambda a: a.outcome),
        ("reason", lambda a: a.reason),
        ("call", lambda a: a.call_id),
        ("time", lambda a: when(a.created_at)),
    )


def _attempt_filters(form: AttemptFilters) -> listings.Filters:
    return form.to_filters(
        admin_zone(), outcome=form.outcome.data or "", claim_type=form.claim_type.data or ""
    )


@bp.get("/attempts")
def attempts() -> ResponseReturnValue:
    """Verification attempts, newest first, as searched and filtered."""
    form = _read(AttemptFilters())
    context = _list_context(form, ".attempts_csv")
    if form.errors:
        return render_template("admin/attempts.html", page=None, **context), 400
    stmt = listings.attempts(_attempt_filters(form))
    page = listings.page_of(get_session(), stmt, _page_number())
    return render_template("admin/attempts.html", page=page, **context)


@bp.get("/attempts.csv")
def attempts_csv() -> ResponseReturnValue:
    """Every verification attempt the filters let through, as CSV."""
    form = _read(AttemptFilters())
    if form.errors:
        return redirect(url_for(".attempts", **_query()))
    records = _stream(listings.attempts(_attempt_filters(form)))
    return _csv("attempts", rows(records, attempt_columns(admin_zone())))


def _lock_filters(form: LockFilters) -> listings.Filters:
    zone = admin_zone()
    return listings.Filters(
        q=(form.q.data or "").strip(),
        kind=form.kind.data or "",
        since=time_zones.utc_start(form.since.data, zone) if form.since.data else None,
        until=time_zones.utc_end(form.until.data, zone) if form.until.data else None,
    )


@bp.get("/locks")
def locks() -> ResponseReturnValue:
    """Locked records and ones with failed attempts, each with an Unlock button."""
    form = _read(LockFilters())
    context = _list_context(form, ".locks_csv")
    session = get_session()
    actions = admin_actions(session)
    if form.errors:
        empty = listings.LockPage(Locks(), 1, 1, 0)
        return render_template(
            "admin/locks.html",
            page=empty,
            locks=empty.locks,
            actions=actions,
            form=UnlockForm(),
            **context,
        ), 400
    page = listings.locks(session, _lock_filters(form), _page_number())
    return render_template(
        "admin/locks.html",
        page=page,
        locks=page.locks,
        actions=actions,
        form=UnlockForm(),
        **context,
    )


LockRecord = User | Group | UnknownClaim


def _lock_row(kind: str, zone: ZoneInfo) -> Callable[[LockRecord], list[Any]]:
    when = _when(zone)

    def row(record: LockRecord) -> list[Any]:
        own: tuple[int | None, int | None]
        if isinstance(record, UnknownClaim):
            number, name, own = record.claimed, "", (None, None)
            kind_shown = f"unknown_{record.claim_type}"
            until = record.locked_until
        else:
            number = record.account_number if isinstance(record, User) else record.group_number
            name, kind_shown = record.name, kind
            own = (record.owner_failed_attempts, record.owner_lockouts)
            until = record.locked_until_latest()
        return [
            kind_shown,
            number,
            name,
            record.failed_attempts,
            own[0],
            record.lockouts,
            own[1],
            when(until),
        ]

    return row


LOCK_HEADER = (
    "kind",
    "number",
    "name",
    "failed_attempts",
    "own_phones_failed_attempts",
    "lockouts",
    "own_phones_lockouts",
    "locked_until",
)


@bp.get("/locks.csv")
def locks_csv() -> ResponseReturnValue:
    """Every lock the filters let through, users then groups then unknown claims, as CSV."""
    form = _read(LockFilters())
    if form.errors:
        return redirect(url_for(".locks", **_query()))
    statements = listings.lock_statements(_lock_filters(form), utcnow())
    zone = admin_zone()

    streams = [(_lock_row(kind, zone), _stream(stmt)) for kind, stmt in statements.items()]

    def records() -> Iterator[list[Any]]:
        for row, found in streams:
            for record in found:
                yield row(record)

    columns: Sequence[Column[list[Any]]] = [(name, _item(i)) for i, name in enumerate(LOCK_HEADER)]
    return _csv("locks", rows(records(), columns))


def _item(i: int) -> Callable[[list[Any]], Any]:
    return lambda values: values[i]
