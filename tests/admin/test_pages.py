"""The admin pages through the Flask test client (SQLite and PostgreSQL): who may
see them, calls made through the IfbyPhone hook and their events, verification
attempts, and unlocking a locked user (with CSRF) leaving an admin action."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.models import AdminAction, Call, CallEvent, UnknownClaim, User, utcnow
from tests.helpers.admin_pages import ADA_PASSWORD, cells, page, rows, text
from tests.helpers.ifbyphone import answers, count, follow, message, send
from tests.helpers.web_client import sign_in, token

M = TypeVar("M")

PAGES = [
    "/admin/",
    "/admin/flows",
    "/admin/flows/verify_caller",
    "/admin/flows/verify_caller.svg",
    "/admin/flows/verify_caller/versions",
    "/admin/flows/verify_caller/versions/1",
    "/admin/flows/verify_caller/diff",
    "/admin/calls",
    "/admin/calls/1",
    "/admin/attempts",
    "/admin/locks",
]


def c14n(xml: str) -> bytes:
    """XML in canonical form, blank text between elements left out."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
    return etree.tostring(etree.fromstring(xml.encode(), parser), method="c14n")


def lock_out(client: FlaskClient, claimed: str) -> None:
    """Five wrong PINs for `claimed`, one per call, through the IfbyPhone hook."""
    for n in range(5):
        reply = send(client, answers(f"s-lock-{claimed}-{n}", claimed, "0000"))
        expected = "That did not match. Please try again."
        if n == 4:
            expected = "This account is locked. Please try again later."
        assert message(reply) == expected


def unlock(client: FlaskClient, fields: dict[str, str], csrf: bool = True) -> TestResponse:
    data = dict(fields)
    if csrf:
        data["csrf_token"] = token(client.get("/admin/locks"))
    return client.post("/admin/locks/unlock", data=data)


def fresh(session: Session, model: type[M], **where: str) -> M:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return session.scalars(select(model).filter_by(**where)).one()


# --- who may see the pages -------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(
    client: FlaskClient, people: dict[str, User]
) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        location = urlsplit(response.location)
        assert location.path == "/login"
        assert parse_qs(location.query)["next"] == [path]
    response = client.post("/admin/locks/unlock", data={"kind": "user", "number": "1001"})
    assert response.status_code == 302 and urlsplit(response.location).path == "/login"


def test_signed_in_non_admins_get_403_until_made_admin(
    client: FlaskClient, session: Session, runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    lock_out(client, "1900")
    assert sign_in(client, "1001", ADA_PASSWORD).status_code == 302
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "for admins only" in response.get_data(as_text=True)
    # A valid token of her own session does not make a non-admin's unlock count.
    refused = client.post(
        "/admin/locks/unlock",
        data={"kind": "user", "number": "1900", "csrf_token": token(client.get("/"))},
    )
    assert refused.status_code == 403
    assert fresh(session, User, account_number="1900").locked_until is not None
    assert count(session, AdminAction) == 0

    assert runner.invoke(args=["users", "make-admin", "1001"]).exit_code == 0
    assert client.get("/admin/locks").status_code == 200  # the next request sees it
    assert runner.invoke(args=["users", "revoke-admin", "1001"]).exit_code == 0
    assert client.get("/admin/locks").status_code == 403


def test_make_admin_and_revoke_admin_commands(
    runner: FlaskCliRunner, session: Session, people: dict[str, User]
) -> None:
    made = runner.invoke(args=["users", "make-admin", "1001"])
    assert made.exit_code == 0 and made.output == "user 1001 is an admin\n"
    assert fresh(session, User, account_number="1001").is_admin is True
    revoked = runner.invoke(args=["users", "revoke-admin", "1001"])
    assert revoked.exit_code == 0 and revoked.output == "user 1001 is no longer an admin\n"
    assert fresh(session, User, account_number="1001").is_admin is False
    missing = runner.invoke(args=["users", "make-admin", "4242"])
    assert missing.exit_code == 1 and "no user with account number 4242" in missing.output


def test_the_index_links_to_every_page(admin_client: FlaskClient) -> None:
    links = page(admin_client.get("/admin/")).xpath("//main//a/@href")
    for path in ("/admin/flows", "/admin/calls", "/admin/attempts", "/admin/locks"):
        assert path in links
    response = admin_client.get("/admin/")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


# --- calls and attempts ----------------------------------------------------------------


def test_a_call_through_ifbyphone_is_listed_with_its_events(
    client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    first = send(client, answers("s-admin-1", "1001", "2468"))
    assert message(first) == "Thank you, Ada Lovelace."
    assert follow(client, "s-admin-1", first).findtext("app") == "transfer"
    call = fresh(session, Call, platform_call_id="s-admin-1")

    [row] = rows(admin_client.get("/admin/calls"), "calls")
    assert row.get("id") == f"call-{call.id}"
    assert cells(row)[:7] == [
        str(call.id),
        "ifbyphone",
        "s-admin-1",
        "+13125550199",
        "verify_caller",
        "verified",
        "ended",
    ]
    assert row.xpath("./td[1]/a/@href") == [f"/admin/calls/{call.id}"]

    response = admin_client.get(f"/admin/calls/{call.id}")
    html = response.get_data(as_text=True)
    assert "2468" not in html  # the PIN is stored masked, and shown so
    events = page(response).xpath("//ol[@class='events']/li")
    stored = list(session.scalars(select(CallEvent).filter_by(call_id=call.id).order_by("id")))
    assert len(events) == len(stored) == 2
    for shown, event in zip(events, stored, strict=True):
        assert shown.get("id") == f"event-{event.id}"
        assert text(shown.xpath(".//dd[@class='kind']")[0]) == event.kind
        payload = json.loads(shown.xpath(".//pre[@class='payload']")[0].text_content())
        assert payload == event.payload
        # The reply as stored, indented, shown as text: its markup escaped, not parsed as HTML.
        reply = shown.xpath(".//details/pre[@class='reply']")[0].text_content()
        assert "\n  <" in reply
        assert c14n(reply) == c14n(event.reply)
        assert not shown.xpath(".//pre[@class='reply']/*")
    assert json.loads(events[0].xpath(".//pre[@class='payload']")[0].text_content())["pin"] == "***"
    assert "&lt;action&gt;" in html
    assert "Thank you, Ada Lovelace." in text(events[0])
    [attempts_list] = page(response).xpath("//h2[.='Verification attempts']/following-sibling::ul")
    attempts = text(attempts_list)
    assert "account 1001: verified (pin)" in attempts

    assert admin_client.get(f"/admin/calls/{call.id + 100}").status_code == 404


def test_calls_come_fifty_to_a_page(admin_client: FlaskClient, session: Session) -> None:
    start = utcnow() - timedelta(hours=2)
    for n in range(51):
        session.add(
            Call(
                platform="twiml",
                platform_call_id=f"CA{n:03d}",
                flow="verify_caller",
                started_at=start + timedelta(minutes=n),
            )
        )
    session.commit()
    first = admin_client.get("/admin/calls")
    shown = [cells(row)[2] for row in rows(first, "calls")]
    assert len(shown) == 50 and shown[0] == "CA050" and shown[-1] == "CA001"
    assert page(first).xpath("//a[@rel='next']/@href") == ["/admin/calls?page=2"]
    second = admin_client.get("/admin/calls?page=2")
    assert [cells(row)[2] for row in rows(second, "calls")] == ["CA000"]
    assert page(second).xpath("//a[@rel='prev']/@href") == ["/admin/calls?page=1"]
    # Past the last page (or absurdly far): the last page, never a database error.
    for beyond in ("3", str(10**18)):
        last = admin_client.get(f"/admin/calls?page={beyond}")
        assert last.status_code == 200
        assert [cells(row)[2] for row in rows(last, "calls")] == ["CA000"]
    assert len(rows(admin_client.get("/admin/calls?page=nonsense"), "calls")) == 50


def test_attempts_page_lists_what_was_claimed_and_links_the_call(
    client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    send(client, answers("s-att-1", "1001", "0000"))
    send(client, answers("s-att-2", "7777", "0000"))
    calls = {c.platform_call_id: c.id for c in session.scalars(select(Call))}
    table = rows(admin_client.get("/admin/attempts"), "attempts")
    assert [cells(row)[:4] for row in table] == [
        ["7777", "account", "rejected", "unknown"],
        ["1001", "account", "rejected", "wrong_pin"],
    ]
    assert table[1].xpath("./td[6]/a/@href") == [f"/admin/calls/{calls['s-att-1']}"]
    assert "0000" not in admin_client.get("/admin/attempts").get_data(as_text=True)


# --- locks and unlocking -----------------------------------------------------------------


def test_unlocking_a_locked_user_resets_the_counters_and_records_who_did_it(
    client: FlaskClient, admin_client: FlaskClient, session: Session, people: dict[str, User]
) -> None:
    lock_out(client, "1001")
    ada = fresh(session, User, account_number="1001")
    assert ada.lockouts == 1 and ada.locked_until is not None
    # One wrong PIN for group 500: counted, not locked, and listed too.
    send(client, {**answers("s-g", "", ""), "group": "500", "pin": "0000"}, flow="group_line")

    before = admin_client.get("/admin/locks")
    [row] = rows(before, "locked-users")
    assert row.get("id") == "user-1001"
    assert cells(row)[:4] == ["1001", "Ada Lovelace", "0", "1"]
    assert cells(row)[4].startswith("Locked until")
    [group_row] = rows(before, "locked-groups")
    assert cells(group_row)[:5] == ["500", "Night shift", "1", "0", "Not locked"]
    assert rows(before, "admin-actions") == []

    response = unlock(admin_client, {"kind": "user", "number": "1001", "claim_type": ""})
    assert response.status_code == 302 and response.location == "/admin/locks"

    ada = fresh(session, User, account_number="1001")
    assert (ada.failed_attempts, ada.lockouts, ada.locked_until) == (0, 0, None)
    [action] = session.scalars(select(AdminAction)).all()
    assert (action.user_id, action.action, action.target_kind, action.target_number) == (
        people["ruth"].id,
        "unlock",
        "user",
        "1001",
    )
    assert action.detail is not None and action.detail.startswith(
        "was: 0 failed attempts, 1 lockouts, locked until "
    )

    after = admin_client.get("/admin/locks")
    assert "Unlocked user 1001." in after.get_data(as_text=True)
    assert rows(after, "locked-users") == []
    [shown] = rows(after, "admin-actions")
    assert cells(shown)[1:4] == ["Ruth Admin (1900)", "unlock", "user 1001"]
    # And Ada's right PIN works again.
    assert message(send(client, answers("s-after", "1001", "2468"))) == "Thank you, Ada Lovelace."


def test_unlocking_an_unknown_account(
    client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    lock_out(client, "9999")
    [row] = rows(admin_client.get("/admin/locks"), "locked-unknown")
    assert cells(row)[:2] == ["9999", "account"]
    fields = {"kind": "unknown", "number": "9999", "claim_type": "account"}
    assert unlock(admin_client, fields).status_code == 302
    claim = fresh(session, UnknownClaim, claimed="9999")
    assert (claim.failed_attempts, claim.lockouts, claim.locked_until) == (0, 0, None)
    [action] = session.scalars(select(AdminAction)).all()
    assert (action.target_kind, action.target_number) == ("unknown_account", "9999")
    after = admin_client.get("/admin/locks")
    assert rows(after, "locked-unknown") == []
    assert cells(rows(after, "admin-actions")[0])[3] == "unknown account 9999"


@pytest.mark.parametrize("csrf_token", [None, "not-a-token"])
def test_an_unlock_without_a_valid_csrf_token_is_400_and_changes_nothing(
    client: FlaskClient, admin_client: FlaskClient, session: Session, csrf_token: str | None
) -> None:
    lock_out(client, "1001")
    data = {"kind": "user", "number": "1001", "claim_type": ""}
    if csrf_token is not None:
        data["csrf_token"] = csrf_token
    response = admin_client.post("/admin/locks/unlock", data=data)
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    ada = fresh(session, User, account_number="1001")
    assert ada.lockouts == 1 and ada.locked_until is not None
    assert count(session, AdminAction) == 0


def test_unlocking_what_does_not_exist_records_nothing(
    admin_client: FlaskClient, session: Session
) -> None:
    missing = unlock(admin_client, {"kind": "user", "number": "4242", "claim_type": ""})
    assert missing.status_code == 302
    assert "No user with account number 4242." in admin_client.get("/admin/locks").get_data(
        as_text=True
    )
    bad_kind = unlock(admin_client, {"kind": "phone", "number": "1", "claim_type": ""})
    assert bad_kind.status_code == 400
    assert count(session, AdminAction) == 0


def test_call_page_shows_glues_notes_on_an_event(
    client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    unread = {f"Extra{n:02d}": "x" for n in range(60)}  # more than are stored
    sent = {**answers("s-admin-notes", "1001", "2468"), **unread}
    assert message(send(client, sent)) == "Thank you, Ada Lovelace."
    call = fresh(session, Call, platform_call_id="s-admin-notes")
    [event] = session.scalars(select(CallEvent).filter_by(call_id=call.id))
    assert event.notes  # how many unread fields were dropped

    [shown] = page(admin_client.get(f"/admin/calls/{call.id}")).xpath("//ol[@class='events']/li")
    assert json.loads(shown.xpath(".//pre[@class='notes']")[0].text_content()) == event.notes
