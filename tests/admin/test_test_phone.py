"""The test phone's endpoint: an admin's test call runs the real engine and the
platform's real XML, checks PINs against the directory and writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Base, User
from tests.helpers.admin_pages import page
from tests.helpers.flows import VERIFIED_PATH

URL = "/admin/flows/verify_caller/try"


def csrf(client: FlaskClient) -> str:
    html = client.get(URL).get_data(as_text=True)
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


class Phone:
    """One test call through the endpoint, as the page's script makes it."""

    def __init__(self, client: FlaskClient, platform: str, **fields: str) -> None:
        self.client, self.platform, self.fields = client, platform, fields
        self.token = ""
        self.csrf = csrf(client)
        self.path: list[str] = []  # the call's path on the graph, as the page lights it

    def post(self, **fields: str) -> dict[str, Any]:
        data = {
            "csrf_token": self.csrf,
            "platform": self.platform,
            "token": self.token,
            **({"version": "1"} if "source" not in self.fields else {}),
            **self.fields,
            **fields,
        }
        response = self.client.post(URL, data=data)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        body: dict[str, Any] = response.get_json()
        self.token = body["token"]
        self.path = body["path"] if body["new_call"] else self.path + body["path"]
        return body

    def call(self) -> dict[str, Any]:
        return self.post(restart="1")

    def answer(self, **answers: str) -> dict[str, Any]:
        return self.post(answers=json.dumps(answers))

    def enter(self, body: dict[str, Any], account: str, pin: str) -> dict[str, Any]:
        """Answer what the call asks (`body`): the account and PIN, however the
        platform asks them (its form all at once, or Glue one at a time)."""
        if body["platform_form"]:
            return self.answer(account=account, pin=pin)
        values = {"account": account, "pin": pin}
        while body["asks"] and body["asks"][0]["name"] in values:
            name = body["asks"][0]["name"]
            body = self.answer(**{name: values.pop(name)})
        return body

    def verify(self, account: str, pin: str) -> dict[str, Any]:
        """A new call, answered with the account and PIN."""
        return self.enter(self.call(), account, pin)


def xml(reply: dict[str, Any]) -> etree._Element:
    return etree.fromstring(reply["xml"].encode())


def heard(body: dict[str, Any]) -> list[str]:
    return [h["text"] for r in body["replies"] for h in r["heard"] if h["spoken"]]


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what a test call must leave as it was."""
    session.commit()
    return {
        table.name: sorted(map(tuple, session.execute(select(table)).all()), key=repr)
        for table in Base.metadata.sorted_tables
    }


PLATFORMS = ("ifbyphone", "voipnow", "didml", "twiml")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_caller_is_verified_and_put_through_on_every_platform(
    admin_client: FlaskClient, session: Session, platform: str
) -> None:
    before = snapshot(session)
    phone = Phone(admin_client, platform)
    body = phone.verify("1001", "2468")
    assert body["ended"] is True and body["outcome"] == "verified"
    assert "Thank you, Ada Lovelace." in heard(body)
    # The path on the graph: both questions, the check, the outcome, its steps.
    assert phone.path == list(VERIFIED_PATH)
    last = xml(body["replies"][-1])
    if platform == "ifbyphone":
        assert last.tag == "action"
        assert last.findtext("app") == "transfer"
        assert last.findtext("parameters/destination") == "3125550101"
    elif platform == "voipnow":
        assert last.tag == "Response"
        assert [el.tag for el in last].count("Jump") == 1
        assert "13125550101" in "".join(el.text or "" for el in last.iter("SetVar"))
    else:
        assert last.tag == "Response"
        assert last.findtext("Say") == "Thank you, Ada Lovelace."
        assert last.findtext("Dial/Number") == "+13125550101"
    assert snapshot(session) == before


@pytest.mark.parametrize("platform", ("ifbyphone", "twiml"))
def test_a_wrong_pin_is_a_retry_and_a_lockout_stays_within_the_trial(
    admin_client: FlaskClient, session: Session, platform: str
) -> None:
    before = snapshot(session)
    phone = Phone(admin_client, platform)
    body = phone.verify("1001", "0000")
    assert body["outcome"] == "retry" and body["ended"] is False
    assert "That did not match. Please try again." in heard(body)
    assert "outcome retry" in body["path"]
    body = phone.enter(body, "1001", "1111")
    body = phone.enter(body, "1001", "2222")
    assert body["outcome"] == "failed" and body["ended"] is True  # three tries a call
    body = phone.verify("1001", "3333")
    assert body["outcome"] == "retry"
    body = phone.enter(body, "1001", "4444")  # the fifth failure: the threshold
    assert body["outcome"] == "locked" and body["ended"] is True
    assert "This account is locked. Please try again later." in heard(body)
    # Locked within the trial: even the right PIN is refused now ...
    assert phone.verify("1001", "2468")["outcome"] == "locked"
    # ... but nowhere else: the database is as it was, Ada is not locked,
    # and a new trial verifies her.
    assert snapshot(session) == before
    ada = session.scalars(select(User).where(User.account_number == "1001")).one()
    assert ada.failed_attempts == 0 and ada.locked_until is None
    assert Phone(admin_client, platform).verify("1001", "2468")["outcome"] == "verified"


def test_a_user_locked_in_the_database_hears_the_locked_outcome(
    admin_client: FlaskClient, session: Session
) -> None:
    from datetime import timedelta

    from app.models import utcnow

    ada = session.scalars(select(User).where(User.account_number == "1001")).one()
    ada.locked_until = utcnow() + timedelta(minutes=10)
    session.commit()
    body = Phone(admin_client, "twiml").verify("1001", "2468")
    assert body["outcome"] == "locked"
    # Calling from her own phone counts apart (the owner's counters): not locked.
    body = Phone(admin_client, "twiml", caller="+13125550101").verify("1001", "2468")
    assert body["outcome"] == "verified"


def test_silence_is_asked_again_then_no_input(admin_client: FlaskClient) -> None:
    phone = Phone(admin_client, "didml")
    first = phone.call()
    gather = xml(first["replies"][0]).find("Gather")
    assert gather is not None and "question=account" in gather.get("action", "")
    assert first["path"] == ["start", "question 1"]
    again = phone.answer(account="")
    assert again["asks"][0]["name"] == "account"
    assert heard(again) == ["Please enter your account number, then press pound."]
    gone = phone.answer(account="")
    assert gone["outcome"] == "no_input" and gone["ended"] is True
    assert "We did not hear anything. Goodbye." in heard(gone)


def test_a_group_verifies_with_a_members_pin(admin_client: FlaskClient) -> None:
    phone = Phone(admin_client, "twiml")
    phone.csrf = csrf(admin_client)
    response = admin_client.post(
        "/admin/flows/group_line/try",
        data={"csrf_token": phone.csrf, "platform": "twiml", "version": "1", "restart": "1"},
    )
    token = response.get_json()["token"]
    for name, keys in (("group", "500"), ("pin", "2468")):
        response = admin_client.post(
            "/admin/flows/group_line/try",
            data={
                "csrf_token": phone.csrf,
                "platform": "twiml",
                "version": "1",
                "token": token,
                "answers": json.dumps({name: keys}),
            },
        )
        token = response.get_json()["token"]
    body = response.get_json()
    assert body["outcome"] == "verified"
    assert "Welcome, Night shift." in heard(body)
    dial = xml(body["replies"][-1]).find("Dial")
    assert dial is not None and [n.text for n in dial.iter("Number")] == ["+13125550500"]


def test_a_draft_runs_as_written_and_one_that_fails_the_check_says_why(
    admin_client: FlaskClient, flows_dir: Path
) -> None:
    source = (flows_dir / "verify_caller.yaml").read_text(encoding="utf-8")
    draft = source.replace('"Thank you, {name}."', '"Hello from the draft, {name}."')
    body = Phone(admin_client, "twiml", source=draft).verify("1001", "2468")
    assert "Hello from the draft, Ada Lovelace." in heard(body)
    assert body["version"] is None

    broken = source.replace("tries: 3", "tries: 99")
    response = admin_client.post(
        URL,
        data={
            "csrf_token": csrf(admin_client),
            "platform": "twiml",
            "source": broken,
            "restart": "1",
        },
    )
    assert response.status_code == 422
    problems = response.get_json()["problems"]
    assert any("tries" in problem for problem in problems), problems


def test_a_changed_draft_begins_a_new_call(admin_client: FlaskClient, flows_dir: Path) -> None:
    source = (flows_dir / "verify_caller.yaml").read_text(encoding="utf-8")
    phone = Phone(admin_client, "twiml", source=source)
    phone.call()
    phone.fields["source"] = source.replace("Goodbye.", "Bye now.")
    body = phone.answer(account="1001")
    assert body["new_call"] is True
    assert body["asks"][0]["name"] == "account"


def test_refusals(admin_client: FlaskClient, client: FlaskClient) -> None:
    token = csrf(admin_client)
    base = {"csrf_token": token, "version": "1", "restart": "1"}
    bad = [
        ({**base, "platform": "nokia"}, "no such platform"),
        ({**base, "platform": "twiml", "version": "99"}, "no such version"),
        ({**base, "platform": "twiml", "token": "forged"}, "token"),
        ({**base, "platform": "twiml", "answers": '{"pin": "12ab"}'}, "keys"),
    ]
    for data, said in bad:
        response = admin_client.post(URL, data=data)
        assert response.status_code == 400
        assert said in response.get_json()["error"]
    # Without the CSRF token: refused before anything runs.
    forged = {**base, "csrf_token": "x", "platform": "twiml"}
    assert admin_client.post(URL, data=forged).status_code == 400
    assert admin_client.post("/admin/flows/nope/try", data=base).status_code == 400
    assert admin_client.get("/admin/flows/nope/try").status_code == 404


def test_the_page_shows_the_phone_beside_the_graph(admin_client: FlaskClient) -> None:
    response = admin_client.get(URL)
    policy = response.headers["Content-Security-Policy"]
    html = page(response)
    assert html.xpath("//script/@src") == ["/static/admin/test_phone.js"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    svg = html.xpath("//*[@data-trial-graph]/*[local-name()='svg']")
    assert len(svg) == 1
    titles = svg[0].xpath(".//*[local-name()='g'][@class='node']/*[local-name()='title']/text()")
    assert {"start", "question 1", "verify", "outcome verified"} <= set(titles)
    phone = html.get_element_by_id("test-phone")
    assert phone.get("data-url") == URL
    assert html.xpath("//select[@id='phone-platform']/option/@value") == list(PLATFORMS)
    assert html.xpath("//select[@id='phone-run']/option/@value") == ["1"]
    keys = html.xpath("//button[@data-key]/text()")
    assert "".join(keys) == "123456789*0#"


def test_not_for_non_admins(client: FlaskClient, people: dict[str, User]) -> None:
    from tests.helpers.admin_pages import ADA_PASSWORD
    from tests.helpers.web_client import sign_in

    assert client.get(URL).status_code == 302  # to the sign-in page
    sign_in(client, "1001", ADA_PASSWORD)
    assert client.get(URL).status_code == 403


def test_no_rows_even_counted(admin_client: FlaskClient, session: Session) -> None:
    """The tables a real call writes stay empty after trials on every platform."""
    from app.models import Call, CallEvent, UnknownClaim, VerificationAttempt

    for platform in PLATFORMS:
        Phone(admin_client, platform).verify("7777", "0000")  # an unknown account too
    session.commit()
    for model in (Call, CallEvent, VerificationAttempt, UnknownClaim):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model
