"""The admin pages of flow versions (SQLite and PostgreSQL): a flow's history, the
diff between any two versions, the source of one, the Rollback button (admins
only, CSRF, recorded as an admin action), the flows page marking a file that
differs from its published version, and the call page naming its version."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flows import versions
from app.flows.registry import current_registry
from app.models import AdminAction, Call, FlowVersion, User, utcnow
from tests.helpers.admin_pages import ADA_PASSWORD, cells, edit, page, rows, text
from tests.helpers.flows import shipped_copy
from tests.helpers.ifbyphone import answers, count, message, send
from tests.helpers.settings import PROJECT_ROOT
from tests.helpers.web_client import sign_in, token

FLOW = "verify_caller"
SHIPPED = (PROJECT_ROOT / "survo_forms" / f"{FLOW}.yaml").read_text(encoding="utf-8")
WARMER = SHIPPED.replace('say: "Thank you, {name}."', 'say: "Welcome back, {name}."')
# Markup in a prompt and a note: shown as text, never parsed as the page's HTML.
MARKED = WARMER.replace(
    'say: "Sorry, we could not verify you."', 'say: "Sorry, <b>no</b> match & goodbye."'
)
HISTORY = f"/admin/flows/{FLOW}/versions"


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows, for the tests to edit."""
    return shipped_copy(tmp_path / "forms")


def publish(session: Session, source: str, note: str = "", flow: str = FLOW) -> FlowVersion:
    """Publish source as `flask forms publish` does, and commit it."""
    version = versions.publish(session, flow, source, by="cli", note=note, origin="file")
    session.commit()
    assert version is not None
    return version


def first_version(client: FlaskClient, session: Session, flow: str = FLOW) -> FlowVersion:
    """The shipped file's version: the one the app published itself, or one published now."""
    client.get("/admin/flows")  # whatever the app publishes of the files, it has now
    session.commit()
    found = versions.published(session, flow)
    if found is None:
        source = (PROJECT_ROOT / "survo_forms" / f"{flow}.yaml").read_text(encoding="utf-8")
        found = publish(session, source, flow=flow)
    return found


@pytest.fixture
def three(admin_client: FlaskClient, session: Session) -> list[FlowVersion]:
    """The shipped flow, then two edits of it: oldest first, the last published."""
    base = first_version(admin_client, session)
    assert base.source == SHIPPED
    return [
        base,
        publish(session, WARMER, note="a warmer greeting"),
        publish(session, MARKED, note="<script>alert(1)</script>"),
    ]


def rollback(client: FlaskClient, number: int, csrf: str | None = "") -> object:
    data = {"number": str(number)}
    if csrf == "":
        data["csrf_token"] = token(client.get(HISTORY))
    elif csrf is not None:
        data["csrf_token"] = csrf
    return client.post(f"/admin/flows/{FLOW}/rollback", data=data)


def stored(session: Session) -> list[FlowVersion]:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return versions.history(session, FLOW)


# --- history, source and diff -----------------------------------------------------------


def test_the_history_lists_each_version_with_its_diff_source_and_rollback(
    admin_client: FlaskClient, three: list[FlowVersion]
) -> None:
    base, warmer, marked = three
    response = admin_client.get(HISTORY)
    html = response.get_data(as_text=True)
    table = rows(response, "versions")
    assert [row.get("id") for row in table] == [f"version-{v.number}" for v in three[::-1]]
    newest, middle, oldest = table
    assert cells(newest)[:5] == [
        f"v{marked.number}",
        marked.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),  # GLUE_TIME_ZONE by default
        "cli",
        "file",
        "<script>alert(1)</script>",  # the note as text
    ]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert cells(middle)[4] == "a warmer greeting"
    assert cells(newest)[6] == "Published"
    assert not newest.xpath(".//form")

    # Each links its source and its diff against the version before it.
    assert newest.xpath("./td[1]/a/@href") == [f"{HISTORY}/{marked.number}"]
    [diff_link] = middle.xpath("./td[6]/a/@href")
    link = urlsplit(diff_link)
    assert link.path == f"/admin/flows/{FLOW}/diff"
    assert parse_qs(link.query) == {"a": [str(base.number)], "b": [str(warmer.number)]}
    assert cells(oldest)[5] == "first"

    # A Rollback button on every version but the published one: a POST with the token.
    for row, version in ((middle, warmer), (oldest, base)):
        [form] = row.xpath(".//form")
        assert form.get("method") == "post"
        assert form.get("action") == f"/admin/flows/{FLOW}/rollback"
        assert form.xpath(".//input[@name='number']/@value") == [str(version.number)]
        assert form.xpath(".//input[@name='csrf_token']/@value")
        assert text(form) == f"Rollback {FLOW} to v{version.number}"


def test_a_version_page_shows_its_source_as_text(
    admin_client: FlaskClient, three: list[FlowVersion]
) -> None:
    base, _, marked = three
    response = admin_client.get(f"{HISTORY}/{marked.number}")
    [source] = page(response).xpath("//pre[@class='source']")
    assert source.text_content() == MARKED
    assert not source.xpath("./*")  # "<b>no</b>" stayed text
    assert not page(response).xpath("//main//form[@method='post']")  # published: no rollback

    older = page(admin_client.get(f"{HISTORY}/{base.number}"))
    assert older.xpath("//pre[@class='source']")[0].text_content() == SHIPPED
    [form] = older.xpath("//main//form[@method='post']")
    assert form.xpath(".//input[@name='number']/@value") == [str(base.number)]


def diff_lines(response: object) -> list[tuple[str, str]]:
    [pre] = page(response).xpath("//pre[@class='diff']")  # type: ignore[arg-type]
    assert not pre.xpath(".//*[not(self::span)]")  # only the lines' spans: no markup of theirs
    return [(span.get("class"), span.text_content()) for span in pre.xpath("./span")]


def test_the_diff_defaults_to_the_published_version_against_the_one_before(
    admin_client: FlaskClient, three: list[FlowVersion]
) -> None:
    _, warmer, marked = three
    response = admin_client.get(f"/admin/flows/{FLOW}/diff")
    assert text(page(response).xpath("//h1")[0]) == f"{FLOW}: v{warmer.number} → v{marked.number}"
    lines = diff_lines(response)
    assert lines[:2] == [
        ("file", f"--- {FLOW} v{warmer.number}"),
        ("file", f"+++ {FLOW} v{marked.number}"),
    ]
    assert lines[2][0] == "hunk" and lines[2][1].startswith("@@ ")
    changed = [line for line in lines if line[0] in ("add", "del")]
    assert changed == [
        ("del", '-    - say: "Sorry, we could not verify you."'),
        ("add", '+    - say: "Sorry, <b>no</b> match & goodbye."'),
    ]
    assert ("same", '     - say: "Welcome back, {name}."') not in lines  # outside the context
    assert "&lt;b&gt;no&lt;/b&gt; match &amp; goodbye" in response.get_data(as_text=True)


def test_the_diff_between_any_two_versions(
    admin_client: FlaskClient, three: list[FlowVersion]
) -> None:
    base, _, marked = three
    response = admin_client.get(f"/admin/flows/{FLOW}/diff?a={marked.number}&b={base.number}")
    changed = [line for line in diff_lines(response) if line[0] in ("add", "del")]
    assert changed == [
        ("del", '-    - say: "Welcome back, {name}."'),
        ("add", '+    - say: "Thank you, {name}."'),
        ("del", '-    - say: "Sorry, <b>no</b> match & goodbye."'),
        ("add", '+    - say: "Sorry, we could not verify you."'),
    ]
    # The choice of others: every version, those shown selected.
    form = page(response).xpath("//form[@class='choose']")[0]
    assert form.get("method") == "get"
    for field, number in (("a", marked.number), ("b", base.number)):
        options = form.xpath(f".//select[@name='{field}']/option/@value")
        assert options == [str(v.number) for v in three[::-1]]
        assert form.xpath(f".//select[@name='{field}']/option[@selected]/@value") == [str(number)]

    same = admin_client.get(f"/admin/flows/{FLOW}/diff?a={base.number}&b={base.number}")
    assert not page(same).xpath("//pre[@class='diff']")
    assert "No differences" in text(page(same))

    first = admin_client.get(f"/admin/flows/{FLOW}/diff?b={base.number}")
    lines = diff_lines(first)
    assert lines[0] == ("file", "--- nothing")
    assert {kind for kind, _ in lines[3:]} == {"add"}


@pytest.mark.parametrize(
    "path",
    [
        "/admin/flows/nothing_here/versions",
        "/admin/flows/nothing_here/diff",
        "/admin/flows/..%2Fsecrets/versions",
        f"{HISTORY}/999",
        f"/admin/flows/{FLOW}/diff?a=999",
        f"/admin/flows/{FLOW}/diff?b=999",
    ],
)
def test_unknown_flows_and_versions_are_404(
    admin_client: FlaskClient, three: list[FlowVersion], path: str
) -> None:
    response = admin_client.get(path)
    assert response.status_code == 404
    assert "There is nothing here." in lxml.html.fromstring(response.data).text_content()


# --- rollback ---------------------------------------------------------------------------


def test_rollback_publishes_the_old_source_as_a_new_version_and_records_who(
    admin_client: FlaskClient,
    session: Session,
    people: dict[str, User],
    three: list[FlowVersion],
) -> None:
    base, _, marked = three
    response = rollback(admin_client, base.number)
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert urlsplit(response.location).path == HISTORY  # type: ignore[attr-defined]

    history = stored(session)
    new = history[0]
    assert new.number == marked.number + 1
    assert (new.source, new.checksum) == (SHIPPED, base.checksum)
    assert (new.origin, new.created_by, new.note) == (
        "rollback",
        "admin:1900",
        f"rollback to {base.number}",
    )
    assert len(history) == 4  # nothing changed, one added
    [action] = session.scalars(select(AdminAction)).all()
    assert action.user_id == people["ruth"].id
    assert (action.action, action.target_kind, action.target_number) == (
        "rollback",
        "flow",
        FLOW,
    )
    assert action.detail == (
        f"to v{base.number}, published as v{new.number} (was v{marked.number})"
    )

    after = admin_client.get(HISTORY)
    assert text(page(after).xpath("//*[@role='status']")[0]) == (
        f"Rolled {FLOW} back to version {base.number}: published as version {new.number}."
    )
    assert cells(rows(after, "versions")[0])[:4][2:] == ["admin:1900", "rollback"]
    # Recorded with the other admin actions.
    [shown] = rows(admin_client.get("/admin/locks"), "admin-actions")
    assert cells(shown)[1:4] == ["Ruth Admin (1900)", "rollback", f"flow {FLOW}"]


def test_rolling_back_to_the_published_or_a_missing_version_is_refused(
    admin_client: FlaskClient, session: Session, three: list[FlowVersion]
) -> None:
    published = three[-1].number
    for number, said in (
        (published, f"Version {published} of {FLOW} is the published one already."),
        (999, f"The flow {FLOW} has no version 999."),
    ):
        response = rollback(admin_client, number)
        assert response.status_code == 302  # type: ignore[attr-defined]
        shown = page(admin_client.get(HISTORY)).xpath("//*[@role='alert']")
        assert [text(alert) for alert in shown] == [said]
    assert rollback(admin_client, 0).status_code == 400  # type: ignore[attr-defined]
    assert len(stored(session)) == 3
    assert count(session, AdminAction) == 0


@pytest.mark.parametrize("csrf_token", [None, "not-a-token"])
def test_a_rollback_without_a_valid_csrf_token_is_400_and_changes_nothing(
    admin_client: FlaskClient, session: Session, three: list[FlowVersion], csrf_token: str | None
) -> None:
    response = rollback(admin_client, three[0].number, csrf=csrf_token)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "did not come from this site" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert [v.number for v in stored(session)] == [v.number for v in three[::-1]]
    assert count(session, AdminAction) == 0


def test_non_admins_cannot_see_versions_nor_roll_back(
    client: FlaskClient, session: Session, people: dict[str, User]
) -> None:
    base = first_version(client, session)
    publish(session, WARMER)
    assert sign_in(client, "1001", ADA_PASSWORD).status_code == 302
    for path in (HISTORY, f"{HISTORY}/{base.number}", f"/admin/flows/{FLOW}/diff"):
        assert client.get(path).status_code == 403, path
    # A valid token of her own session does not make a non-admin's rollback count.
    refused = client.post(
        f"/admin/flows/{FLOW}/rollback",
        data={"number": str(base.number), "csrf_token": token(client.get("/"))},
    )
    assert refused.status_code == 403
    assert "for admins only" in refused.get_data(as_text=True)
    assert len(stored(session)) == 2
    assert count(session, AdminAction) == 0


def test_signed_out_visitors_are_sent_to_sign_in(
    client: FlaskClient, session: Session, people: dict[str, User]
) -> None:
    base = first_version(client, session)
    response = client.post(f"/admin/flows/{FLOW}/rollback", data={"number": str(base.number)})
    assert response.status_code == 302 and urlsplit(response.location).path == "/login"
    assert len(stored(session)) == 1


# --- the flows page and the call page ---------------------------------------------------


def test_the_flows_page_shows_published_versions_and_marks_a_file_that_differs(
    admin_client: FlaskClient, session: Session, flows_dir: Path
) -> None:
    shipped = first_version(admin_client, session)
    group_line = first_version(admin_client, session, "group_line")
    # Published from elsewhere (the CLI, another host): the file here is now behind.
    warmer = publish(session, WARMER, note="from another checkout")

    by_name = {row.get("id"): row for row in rows(admin_client.get("/admin/flows"), "flows")}
    verify = by_name[f"flow-{FLOW}"]
    assert cells(verify)[3] == (
        f"v{warmer.number}, {warmer.created_at:%Y-%m-%d %H:%M:%S} UTC by cli"
        f" The file differs from v{warmer.number}"
    )
    assert verify.xpath("./td[4]/a/@href") == [HISTORY]
    assert verify.xpath("./td[4]//*[@class='differs']")
    same = by_name["flow-group_line"]
    assert cells(same)[3].startswith(f"v{group_line.number}, ")
    assert not same.xpath(".//*[@class='differs']")

    detail = page(admin_client.get(f"/admin/flows/{FLOW}"))
    assert detail.xpath("//main//*[@class='differs']")
    assert f"{HISTORY}/{warmer.number}" in detail.xpath("//main//a/@href")

    # The file made the same as what is published: no longer marked.
    edit(flows_dir / f"{FLOW}.yaml", WARMER)
    again = {row.get("id"): row for row in rows(admin_client.get("/admin/flows"), "flows")}
    assert not again[f"flow-{FLOW}"].xpath(".//*[@class='differs']")
    assert versions.published(session, FLOW).number == warmer.number  # type: ignore[union-attr]
    assert shipped.number < warmer.number


def test_a_flow_published_with_no_file_here_is_listed(
    admin_client: FlaskClient, session: Session
) -> None:
    published_only = versions.publish(
        session, "night_line", SHIPPED, by="cli", note="", origin="file"
    )
    session.commit()
    assert published_only is not None
    table = rows(admin_client.get("/admin/flows"), "flows")
    night = {row.get("id"): row for row in table}["flow-night_line"]
    # A flow published with no file here is listed, and served.
    assert cells(night)[1] == "no file here"
    assert cells(night)[3].startswith("v1, ")
    assert not night.xpath(".//*[@class='differs']")


def test_the_call_page_names_the_calls_flow_version(
    admin_client: FlaskClient, session: Session
) -> None:
    for platform_call_id, number in (("CA-pinned", 2), ("CA-before", None)):
        session.add(
            Call(
                platform="twiml",
                platform_call_id=platform_call_id,
                flow=FLOW,
                flow_version=number,
                started_at=utcnow(),
            )
        )
    session.commit()
    pinned, before = session.scalars(select(Call).order_by(Call.id)).all()

    [version] = page(admin_client.get(f"/admin/calls/{pinned.id}")).xpath(
        "//dd[@class='flow-version']"
    )
    assert text(version) == "v2"
    assert version.xpath("./a/@href") == [f"{HISTORY}/2"]
    [none] = page(admin_client.get(f"/admin/calls/{before.id}")).xpath(
        "//dd[@class='flow-version']"
    )
    assert text(none) == "\u2013" and not none.xpath("./a")


def test_a_call_names_the_version_it_started_on_after_a_rollback(
    client: FlaskClient, admin_client: FlaskClient, session: Session, three: list[FlowVersion]
) -> None:
    with client.application.app_context():  # publishes from outside: seen at the next poll
        current_registry().poll(force=True)
    before = send(client, answers("s-version-1", "1001", "2468"))
    assert message(before) == "Welcome back, Ada Lovelace."  # the published edit
    assert rollback(admin_client, three[0].number).status_code == 302  # type: ignore[attr-defined]
    rolled_back = stored(session)[0]
    after = send(client, answers("s-version-2", "1001", "2468"))
    assert message(after) == "Thank you, Ada Lovelace."

    session.commit()  # end the test's read snapshot, to see the calls
    for call_id, version in (("s-version-1", three[-1]), ("s-version-2", rolled_back)):
        call = session.scalars(select(Call).filter_by(platform_call_id=call_id)).one()
        assert call.flow_version == version.number
        [shown] = page(admin_client.get(f"/admin/calls/{call.id}")).xpath(
            "//dd[@class='flow-version']"
        )
        assert text(shown) == f"v{version.number}"
        assert shown.xpath("./a/@href") == [f"{HISTORY}/{version.number}"]
