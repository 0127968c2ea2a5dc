"""The admin lists through the Flask test client (SQLite and PostgreSQL), over
calls played through the platforms' routes: search and filters, paging, CSV
export (formula-looking cells escaped), and times in the admin's time zone."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import create_app
from app.admin import time_zones
from app.admin.service import PER_PAGE
from app.models import Call, User
from tests.helpers.admin_pages import ADMIN_PASSWORD, cells, page, rows, text
from tests.helpers.ifbyphone import answers, send
from tests.helpers.journeys import Driver
from tests.helpers.web_client import sign_in, token


@pytest.fixture
def played(client: FlaskClient, session: Session, people: dict[str, User]) -> None:
    """Ada verified on TwiML, a stranger's wrong PIN for group 500 on IfbyPhone,
    and a call whose id a spreadsheet would take for a formula."""
    Driver(client, "twiml", "verify_caller", "CA-ada").attempt("1001", "2468")
    Driver(client, "ifbyphone", "group_line", "I-group").attempt("500", "0000")
    send(client, answers('=HYPERLINK("http://evil.example")', "1001", "2468"))
    session.commit()


def listed(response: TestResponse, table: str) -> list[str]:
    """The call ids (or claims) of a list's rows, in order."""
    column = 2 if table == "calls" else 0
    return [cells(row)[column] for row in rows(response, table)]


def read_csv(response: TestResponse) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_calls_are_searched_and_filtered(played: None, admin_client: FlaskClient) -> None:
    get = admin_client.get
    everything = ['=HYPERLINK("http://evil.example")', "I-group", "CA-ada"]
    assert listed(get("/admin/calls"), "calls") == everything
    assert listed(get("/admin/calls?platform=twiml"), "calls") == ["CA-ada"]
    assert listed(get("/admin/calls?outcome=retry"), "calls") == ["I-group"]
    assert listed(get("/admin/calls?flow=group_line"), "calls") == ["I-group"]
    # By the account claimed, by the claimant's name, by the caller's number as typed.
    assert listed(get("/admin/calls?q=1001"), "calls") == everything[::2]
    assert listed(get("/admin/calls?q=lovelace"), "calls") == everything[::2]
    assert listed(get("/admin/calls?q=500"), "calls") == ["I-group"]
    assert listed(get("/admin/calls?q=(312)+555-0199"), "calls") == everything
    assert listed(get("/admin/calls?q=CA-ada&outcome=verified"), "calls") == ["CA-ada"]
    found = page(get("/admin/calls?q=nobody"))
    assert text(found.xpath("//p[@id='found']")[0]).startswith("0 calls")


def test_attempts_are_searched_and_filtered(played: None, admin_client: FlaskClient) -> None:
    get = admin_client.get
    assert listed(get("/admin/attempts"), "attempts") == ["1001", "500", "1001"]
    assert listed(get("/admin/attempts?outcome=rejected"), "attempts") == ["500"]
    assert listed(get("/admin/attempts?claim_type=group"), "attempts") == ["500"]
    assert listed(get("/admin/attempts?platform=twiml&q=ada"), "attempts") == ["1001"]
    assert listed(get("/admin/attempts?flow=group_line"), "attempts") == ["500"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "From: Not a valid date value."),
        ("until=9999-12-31", "To: Choose a date between 1900 and 9000."),
        ("platform=skype", "Platform: Not a valid choice."),
        ("flow=../etc", "Flow: No such flow name."),
        ("q=" + "9" * 65, "Search: Field cannot be longer than 64 characters."),
    ],
)
def test_bad_filters_are_a_message_not_an_error(
    admin_client: FlaskClient, query: str, message: str
) -> None:
    for path in ("/admin/calls", "/admin/attempts"):
        response = admin_client.get(f"{path}?{query}")
        assert response.status_code == 400
        html = lxml.html.fromstring(response.get_data(as_text=True))
        alerts = [text(p) for p in html.xpath("//p[@role='alert']")]
        assert alerts == [message]
        # The CSV of a bad filter is the list with its message, never rows.
        assert admin_client.get(f"{path}.csv?{query}").status_code == 302


def test_calls_are_paged_with_their_filters(
    client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    for n in range(PER_PAGE + 3):
        # Each from a number of its own, for an account of its own (no rate limit, no lock).
        fields = answers(f"s-page-{n:02d}", f"9{n:03d}", "0000") | {"caller_id": f"31255{n:05d}"}
        send(client, fields)  # no such account: retry
    send(client, answers("s-other", "1001", "2468"))
    first = page(admin_client.get("/admin/calls?outcome=retry"))
    assert len(first.xpath("//table[@id='calls']/tbody/tr")) == PER_PAGE
    assert text(first.xpath("//p[@id='found']")[0]).startswith(f"{PER_PAGE + 3} calls")
    [older] = first.xpath("//nav[@class='pager']/a[@rel='next']/@href")
    assert "outcome=retry" in older and "page=2" in older
    second = admin_client.get(older)
    assert listed(second, "calls") == ["s-page-02", "s-page-01", "s-page-00"]
    # A page past the last shows the last.
    assert (
        listed(admin_client.get("/admin/calls?outcome=retry&page=99"), "calls")[-1] == "s-page-00"
    )


def test_calls_export_as_csv_with_formulas_escaped(
    played: None, admin_client: FlaskClient, session: Session
) -> None:
    exported = read_csv(admin_client.get("/admin/calls.csv?q=1001"))
    assert [row["call_id"] for row in exported] == ['\'=HYPERLINK("http://evil.example")', "CA-ada"]
    ada = exported[1]
    call = session.scalars(select(Call).where(Call.platform_call_id == "CA-ada")).one()
    assert ada["caller"] == "'+13125550199"  # a leading + is a formula to a spreadsheet
    assert (ada["platform"], ada["flow"], ada["reached"], ada["outcome"]) == (
        "twiml", "verify_caller", "pin", "verified"
    )  # fmt: skip
    assert ada["started"] == call.started_at.isoformat() + "+00:00"
    everything = read_csv(admin_client.get("/admin/calls.csv"))
    assert len(everything) == 3


def test_attempts_and_locks_export_as_csv(
    client: FlaskClient, admin_client: FlaskClient, people: dict[str, User]
) -> None:
    for n in range(5):
        send(client, answers(f"s-lock-{n}", "1001", "0000"))
    attempts = read_csv(admin_client.get("/admin/attempts.csv?outcome=locked"))
    assert [(a["claimed"], a["outcome"], a["reason"]) for a in attempts] == [
        ("1001", "locked", "locked_now")
    ]
    locks = read_csv(admin_client.get("/admin/locks.csv"))
    assert [(r["kind"], r["number"], r["name"], r["lockouts"]) for r in locks] == [
        ("user", "1001", "Ada Lovelace", "1")
    ]
    assert locks[0]["locked_until"].endswith("+00:00")
    assert read_csv(admin_client.get("/admin/locks.csv?kind=group")) == []
    shown = admin_client.get("/admin/locks?q=lovelace")
    assert [cells(r)[0] for r in rows(shown, "locked-users")] == ["1001"]
    assert page(shown).xpath("//table[@id='locked-groups']") == []  # none to show
    assert rows(admin_client.get("/admin/locks?q=grace"), "locked-users") == []
    only_groups = page(admin_client.get("/admin/locks?kind=group"))
    assert only_groups.xpath("//h2[@id='users-heading']") == []


def test_times_are_shown_in_the_admins_time_zone(
    played: None, admin_client: FlaskClient, session: Session
) -> None:
    call = session.scalars(select(Call).where(Call.platform_call_id == "CA-ada")).one()
    [row] = rows(admin_client.get("/admin/calls?q=CA-ada"), "calls")
    assert cells(row)[7] == f"{call.started_at:%Y-%m-%d %H:%M:%S} UTC"

    settings = admin_client.get("/admin/settings")
    assert "America/Chicago" in page(settings).xpath("//select[@name='time_zone']/option/@value")
    saved = admin_client.post(
        "/admin/settings",
        data={"time_zone": "America/Chicago", "csrf_token": token(settings)},
    )
    assert saved.status_code == 302
    chicago = ZoneInfo("America/Chicago")
    there = time_zones.local(call.started_at, chicago)
    [row] = rows(admin_client.get("/admin/calls?q=CA-ada"), "calls")
    assert cells(row)[7] == f"{there:%Y-%m-%d %H:%M:%S} {there.tzname()}"
    assert there.tzname() in ("CST", "CDT")
    exported = read_csv(admin_client.get("/admin/calls.csv?q=CA-ada"))
    assert exported[0]["started"] == there.isoformat()

    # Dates filter by the admin's day: the day of the call in Chicago finds it.
    day = there.date()
    found = admin_client.get(f"/admin/calls?since={day}&until={day}&q=CA-ada")
    assert listed(found, "calls") == ["CA-ada"]
    later = day + timedelta(days=1)
    assert listed(admin_client.get(f"/admin/calls?since={later}&q=CA-ada"), "calls") == []

    refused = admin_client.post(
        "/admin/settings",
        data={"time_zone": "Mars/Olympus", "csrf_token": token(settings)},
    )
    assert refused.status_code == 400
    session.commit()  # end the test's read snapshot
    assert session.scalars(select(User.time_zone).where(User.account_number == "1900")).one() == (
        "America/Chicago"
    )


def test_the_deployments_zone_is_the_default(
    app_config: dict[str, object], tmp_path: Path, people: dict[str, User], session: Session
) -> None:
    """GLUE_TIME_ZONE, for admins who chose none."""
    app = create_app({**app_config, "TIME_ZONE": "Asia/Kolkata"}, instance_path=str(tmp_path / "i"))
    try:
        client = app.test_client()
        assert sign_in(client, "1900", ADMIN_PASSWORD).status_code == 302
        send(client, answers("s-kolkata", "1001", "2468"))
        session.commit()
        call = session.scalars(select(Call).where(Call.platform_call_id == "s-kolkata")).one()
        [row] = rows(client.get("/admin/calls"), "calls")
        there = time_zones.local(call.started_at, ZoneInfo("Asia/Kolkata"))
        assert cells(row)[7] == f"{there:%Y-%m-%d %H:%M:%S} IST"
        shown = page(client.get("/admin/settings"))
        assert text(shown.xpath("//option[@value='']")[0]) == "The server's: Asia/Kolkata"
    finally:
        app.extensions["glue.engine"].dispose()
