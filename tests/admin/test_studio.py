"""The flow editor's pages (SQLite and PostgreSQL): the plain form without scripts,
the check and graph endpoints its script asks, drafts, diff, publish (refused when
broken or when the base moved) and the platforms' URLs on the flow page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lxml.etree
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.admin import drafts
from app.flows import versions
from app.models import AdminAction, FlowDraft, User
from tests.helpers.admin_pages import ADA_PASSWORD, page, text
from tests.helpers.flows import shipped_copy
from tests.helpers.ifbyphone import answers, message, send
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS
from tests.helpers.web_client import sign_in, token

FLOW = "verify_caller"
EDIT = f"/admin/flows/{FLOW}/edit"
SHIPPED = (PROJECT_ROOT / "survo_forms" / f"{FLOW}.yaml").read_text(encoding="utf-8")
WARMER = SHIPPED.replace('say: "Thank you, {name}."', 'say: "Welcome back, {name}."')
BROKEN = WARMER.replace("pin: pin", "pin: code", 1)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows: publishing may write them."""
    return shipped_copy(tmp_path / "forms")


def submit(
    client: FlaskClient, action: str, source: str, base: str = "1", **more: str
) -> TestResponse:
    data = {"csrf_token": token(client.get(EDIT)), "source": source, "base": base, "action": action}
    return client.post(EDIT, data=data | more)


def published(session: Session, name: str = FLOW) -> int | None:
    session.commit()
    row = versions.published(session, name)
    return row.number if row else None


def editor_text(response: TestResponse) -> str:
    html = lxml.html.fromstring(response.get_data(as_text=True))
    (area,) = html.xpath("//form[@id='studio']//textarea[@name='source']")
    return str(area.text or "")


def test_the_editor_is_a_plain_form_with_the_published_source(admin_client: FlaskClient) -> None:
    response = admin_client.get(EDIT)
    html = page(response)
    assert editor_text(response) == SHIPPED
    (form,) = html.xpath("//form[@id='studio']")
    assert form.get("method") == "post" and form.get("action") == EDIT
    assert form.get("data-check-url") == f"/admin/flows/{FLOW}/check"
    assert form.get("data-graph-url") == f"/admin/flows/{FLOW}/draft.svg"
    assert form.xpath(".//input[@name='base']/@value") == ["1"]
    assert form.xpath(".//button[@name='action']/@value") == ["save", "diff", "publish"]
    assert html.xpath("//script/@src") == ["/static/admin/studio.js", "/static/admin/test_phone.js"]
    assert "Published v1" in text(html.xpath("//p[@id='studio-state']")[0])
    # The test phone beside it runs the published version, or the text being edited.
    (phone,) = html.xpath("//section[@id='test-phone-slot']//section[@id='test-phone']")
    assert phone.get("data-url") == f"/admin/flows/{FLOW}/try"
    assert html.xpath("//select[@id='phone-run']/option/@value") == ["1"]
    # Only this site's scripts run, and only the editor's page and the flow page have any.
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "script-src" not in admin_client.get("/admin/flows").headers["Content-Security-Policy"]


def test_the_bundle_and_the_stylesheet_are_served(client: FlaskClient) -> None:
    script = client.get("/static/admin/studio.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"glueStudio" in script.data and b"glue-studio:change" in script.data
    assert client.get("/static/admin/studio.css").status_code == 200


def test_the_check_marks_each_problem_at_its_line(admin_client: FlaskClient) -> None:
    csrf = token(admin_client.get(EDIT))
    response = admin_client.post(
        f"/admin/flows/{FLOW}/check", data={"csrf_token": csrf, "source": BROKEN}
    )
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    line = next(i for i, t in enumerate(BROKEN.splitlines(), 1) if "pin: code" in t)
    assert body == {
        "ok": False,
        "problems": [
            {
                "line": line,
                "column": BROKEN.splitlines()[line - 1].index("pin: code"),
                "end_column": BROKEN.splitlines()[line - 1].index("pin: code") + 9,
                "field": "verify.pin",
                "message": "no question named code",
                "hint": "questions are: account, pin",
            }
        ],
    }
    good = admin_client.post(
        f"/admin/flows/{FLOW}/check", data={"csrf_token": csrf, "source": WARMER}
    ).get_json()
    assert good["ok"] is True and good["problems"] == []


def test_the_check_holds_the_pin_policy_as_forms_check_does(
    app: Flask, admin_client: FlaskClient
) -> None:
    app.config["PIN_MAX_LENGTH"] = 10
    csrf = token(admin_client.get(EDIT))
    body = admin_client.post(
        f"/admin/flows/{FLOW}/check", data={"csrf_token": csrf, "source": SHIPPED}
    ).get_json()
    assert [p["field"] for p in body["problems"]] == ["questions[1].max_digits"]


def test_the_check_and_the_drawing_need_the_csrf_token_and_an_admin(
    client: FlaskClient, admin_client: FlaskClient, people: dict[str, User]
) -> None:
    refused = admin_client.post(f"/admin/flows/{FLOW}/check", data={"source": WARMER})
    assert refused.status_code == 400
    admin_client.post("/logout", data={"csrf_token": token(admin_client.get("/admin/"))})
    sign_in(client, "1001", ADA_PASSWORD)  # not an admin
    csrf = token(client.get("/"))
    assert client.post(f"/admin/flows/{FLOW}/check", data={"csrf_token": csrf}).status_code == 403
    drawn = client.post(f"/admin/flows/{FLOW}/draft.svg", data={"csrf_token": csrf})
    assert drawn.status_code == 403


def test_the_draft_is_drawn(graphviz_dot: None, admin_client: FlaskClient) -> None:
    csrf = token(admin_client.get(EDIT))
    response = admin_client.post(
        f"/admin/flows/{FLOW}/draft.svg", data={"csrf_token": csrf, "source": WARMER}
    )
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    svg = lxml.etree.fromstring(response.data)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = svg.xpath(
        "//svg:g[@class='node']/svg:title/text()", namespaces={"svg": svg.nsmap[None]}
    )
    assert {"verify", "outcome verified", "verified step 1"} <= set(titles)
    assert "Welcome back" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    broken = admin_client.post(
        f"/admin/flows/{FLOW}/draft.svg", data={"csrf_token": csrf, "source": BROKEN}
    )
    assert broken.status_code == 422


def test_a_saved_draft_survives_a_reload_and_its_diff_is_shown(
    admin_client: FlaskClient, session: Session
) -> None:
    saved = submit(admin_client, "save", WARMER.replace("\n", "\r\n"))
    assert saved.status_code == 302 and saved.headers["Location"] == EDIT
    draft = session.scalars(select(FlowDraft)).one()
    assert (draft.flow, draft.source, draft.base_version) == (FLOW, WARMER, 1)

    reloaded = admin_client.get(EDIT)
    assert editor_text(reloaded) == WARMER
    assert "Your draft, saved" in text(page(reloaded).xpath("//p[@id='studio-state']")[0])

    shown = submit(admin_client, "diff", WARMER)
    assert shown.headers["Location"] == f"{EDIT}/diff"
    diff = page(admin_client.get(f"{EDIT}/diff"))
    header = [text(e) for e in diff.xpath("//pre[@class='diff']/span[@class='file']")]
    assert header == ["--- verify_caller v1", "+++ your draft"]
    added = [text(e) for e in diff.xpath("//pre[@class='diff']/span[@class='add']")]
    assert [line for line in added if "Welcome back" in line] == [
        '+ - say: "Welcome back, {name}."'
    ]
    download = admin_client.get(f"/admin/flows/{FLOW}/download?draft=1")
    assert download.get_data(as_text=True) == WARMER
    assert download.headers["Content-Disposition"] == f'attachment; filename="{FLOW}.yaml"'

    discarded = submit(admin_client, "discard", WARMER)
    assert discarded.status_code == 302
    session.commit()  # a new snapshot: what the requests wrote
    assert session.scalars(select(FlowDraft)).all() == []
    assert editor_text(admin_client.get(EDIT)) == SHIPPED


def test_publishing_reaches_the_next_call(
    admin_client: FlaskClient, session: Session, flows_dir: Path
) -> None:
    response = submit(admin_client, "publish", WARMER, note="warmer")
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/flows/{FLOW}"
    assert published(session) == 2
    row = versions.published(session, FLOW)
    assert row is not None and (row.created_by, row.origin, row.note) == (
        "admin:1900",
        "editor",
        "warmer",
    )
    assert session.scalars(select(AdminAction.detail)).one() == "v2 (was v1): warmer"
    flow_page = page(admin_client.get(f"/admin/flows/{FLOW}"))
    (flashed,) = flow_page.xpath("//p[@role='status']")
    assert text(flashed).startswith("Published verify_caller as version 2.")
    # The tests' app runs with FLOWS_AUTO_PUBLISH, as `make run` does: the file is written.
    assert "Written to verify_caller.yaml too" in text(flashed)
    assert (flows_dir / f"{FLOW}.yaml").read_text(encoding="utf-8") == WARMER

    # A new call, as IfbyPhone sends it, runs version 2.
    action = send(admin_client, answers("s-studio-1", "1001", "2468"))
    assert message(action) == "Welcome back, Ada Lovelace."


def test_the_file_is_left_alone_without_auto_publish_or_when_edited_apart(
    app: Flask, admin_client: FlaskClient, session: Session, flows_dir: Path
) -> None:
    path = flows_dir / f"{FLOW}.yaml"
    app.config["FLOWS_AUTO_PUBLISH"] = False
    submit(admin_client, "publish", WARMER)
    flashed = text(page(admin_client.get(f"/admin/flows/{FLOW}")).xpath("//p[@role='status']")[0])
    assert (
        flashed
        == "Published verify_caller as version 2. Download it to commit it to the flow files."
    )
    assert path.read_text(encoding="utf-8") == SHIPPED

    app.config["FLOWS_AUTO_PUBLISH"] = True
    path.write_text(SHIPPED + "# edited in the checkout\n", encoding="utf-8")
    submit(admin_client, "publish", WARMER + "# and in the browser\n", base="2")
    flashed = text(page(admin_client.get(f"/admin/flows/{FLOW}")).xpath("//p[@role='status']")[0])
    assert "was edited apart from the editor: it is left as it is" in flashed
    assert path.read_text(encoding="utf-8").endswith("# edited in the checkout\n")


def test_a_broken_draft_is_refused_and_kept(admin_client: FlaskClient, session: Session) -> None:
    response = submit(admin_client, "publish", BROKEN)
    assert response.status_code == 422
    html = lxml.html.fromstring(response.get_data(as_text=True))
    assert text(html.xpath("//p[@id='refused']")[0]) == (
        "verify_caller was not published: it has 1 problem."
    )
    (problem,) = html.xpath("//ul[@id='problems']/li")
    line = next(i for i, t in enumerate(BROKEN.splitlines(), 1) if "pin: code" in t)
    assert problem.get("data-line") == str(line)
    assert text(problem) == (
        f"Line {line}: verify.pin: no question named code (hint: questions are: account, pin)"
    )
    assert editor_text(response) == BROKEN
    assert published(session) == 1
    assert session.scalars(select(FlowDraft.source)).one() == BROKEN


def test_the_second_publish_on_the_same_base_is_shown_the_diff(
    admin_client: FlaskClient, session: Session, people: dict[str, User]
) -> None:
    other = people["ada"]
    other.is_admin = True
    session.commit()
    theirs = SHIPPED.replace("Sorry, we could not verify you.", "Goodbye.")
    drafts.publish_draft(session, other, FLOW, theirs, 1)
    session.commit()

    response = submit(admin_client, "publish", WARMER)
    assert response.status_code == 409
    html = lxml.html.fromstring(response.get_data(as_text=True))
    assert text(html.xpath("//p[@role='alert']")[0]) == (
        "verify_caller was published as version 2 since you started from version 1: "
        "see what changed, then publish again."
    )
    adds = [
        text(e)
        for e in html.xpath(
            "//pre[@aria-label='What was published since your draft started']/span[@class='add']"
        )
    ]
    assert any("Goodbye." in line for line in adds)
    dels = [
        text(e)
        for e in html.xpath(
            "//pre[@aria-label='What publishing your draft would change']/span[@class='del']"
        )
    ]
    assert any("Goodbye." in line for line in dels)
    assert published(session) == 2  # nothing overwritten

    # Publishing over v2, knowingly, from the page's own form.
    (form,) = html.xpath("//form[.//input[@name='action'][@value='publish']]")
    fields = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@name]")}
    assert fields["base"] == "2" and fields["source"] == WARMER
    again = admin_client.post(EDIT, data=fields | {"note": "over ada's"})
    assert again.status_code == 302
    assert published(session) == 3


def test_a_new_flow_from_scratch(
    admin_client: FlaskClient, session: Session, flows_dir: Path
) -> None:
    form = page(admin_client.get("/admin/flows/new"))
    assert form.xpath("//input[@name='name']")
    csrf = token(admin_client.get("/admin/flows/new"))
    taken = admin_client.post("/admin/flows/new", data={"csrf_token": csrf, "name": FLOW})
    assert taken.status_code == 422
    assert "There is a flow called verify_caller already." in taken.get_data(as_text=True)
    # Nor can the editor's own URL make a flow called `new` (its page would be the form).
    sneaked = {"csrf_token": csrf, "source": drafts.STARTER, "base": "", "action": "publish"}
    assert admin_client.get("/admin/flows/new/edit").status_code == 404
    assert admin_client.post("/admin/flows/new/edit", data=sneaked).status_code == 404
    assert published(session, "new") is None

    made = admin_client.post("/admin/flows/new", data={"csrf_token": csrf, "name": "night_line"})
    assert made.headers["Location"] == "/admin/flows/night_line/edit"
    opened = admin_client.get("/admin/flows/night_line/edit")
    assert editor_text(opened) == drafts.STARTER
    assert page(opened).xpath("//input[@name='base']/@value") == [""]

    data = {"csrf_token": csrf, "source": drafts.STARTER, "base": "", "action": "publish"}
    response = admin_client.post("/admin/flows/night_line/edit", data=data)
    assert response.headers["Location"] == "/admin/flows/night_line"
    assert published(session, "night_line") == 1
    assert (flows_dir / "night_line.yaml").read_text(encoding="utf-8") == drafts.STARTER
    listed = page(admin_client.get("/admin/flows"))
    assert listed.xpath("//tr[@id='flow-night_line']")
    assert listed.xpath("//a[@href='/admin/flows/new']")


def test_the_flow_page_says_where_to_point_each_platform(
    app: Flask, admin_client: FlaskClient
) -> None:
    app.config["PUBLIC_URL"] = "https://glue.example.com"
    response = admin_client.get(f"/admin/flows/{FLOW}")
    html = page(response)
    assert html.xpath(f"//a[@href='{EDIT}']")
    secret = TEST_SECRETS["IFBYPHONE_SECRET"]
    (ifbyphone,) = html.xpath("//section[@id='hook-ifbyphone']//dd")
    assert text(ifbyphone.xpath("./code")[0]) == (
        "https://glue.example.com/ifbyphone/verify_caller?key=••••••••"
    )
    copied = ifbyphone.xpath("./button/@data-copy")[0]
    assert urlsplit(copied).path == "/ifbyphone/verify_caller"
    assert parse_qs(urlsplit(copied).query) == {"key": [secret]}
    shown = text(html.xpath("//section[@id='hook-voipnow']")[0])
    assert (
        "https://glue.example.com/voipnow/verify_caller/dial-in?key=••••••••"
        "&account=$account&pin=$pin&glue_turn=$glue_turn"
    ) in shown
    assert "/twiml/verify_caller" in text(html.xpath("//section[@id='hook-twiml']")[0])
    assert secret not in text(html)  # only in the copy buttons' data
    assert html.xpath("//script/@src") == ["/static/admin/copy_url.js"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
