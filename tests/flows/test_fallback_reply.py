"""The reply without the database (`fallback_reply`): rendered once per flow,
URL and point in the apology, and never a flow's reply for another flow."""

from __future__ import annotations

from lxml import etree

from app.dialects import ifbyphone
from app.dialects.didml import DIDML
from app.flows.fallback import _rendered_fallback, fallback_reply
from app.flows.loader import load_flow_text
from app.flows.model import Flow
from tests.helpers.settings import PROJECT_ROOT

SORRY = "We are sorry, something went wrong. Please call again later."
URL = "https://glue.example.com/ifbyphone/verify_caller?key=k"


def flow(error_message: str = SORRY) -> Flow:
    text = (PROJECT_ROOT / "survo_forms" / "verify_caller.yaml").read_text()
    return load_flow_text(text.replace(SORRY, error_message), "verify_caller")


def said(reply: bytes) -> list[str]:
    return [m.text for m in etree.fromstring(reply).iter("message")]


def test_the_apology_then_its_next_step_from_the_pass_through() -> None:
    verify_caller = flow()
    first = fallback_reply(ifbyphone, verify_caller, {"session_id": "a"}, URL)
    assert said(first) == [SORRY]
    resumed = fallback_reply(ifbyphone, verify_caller, {"p_t": "turn|1||next|error:1"}, URL)
    # The apology was heard: the flow's next error step (hang up), not the apology again.
    assert said(resumed) == []
    assert etree.fromstring(resumed).findtext("app") == "hangup"
    # Asked again, for any caller: the reply rendered the first time.
    assert fallback_reply(ifbyphone, verify_caller, {"session_id": "b"}, URL) is first


def test_a_flow_published_again_is_rendered_anew_and_dialects_apart() -> None:
    down = "Sorry, our lines are down. Goodbye."
    before, after = flow(), flow(down)
    assert said(fallback_reply(ifbyphone, before, {}, URL)) == [SORRY]
    assert said(fallback_reply(ifbyphone, after, {}, URL)) == [down]
    # An equal flow is an entry of its own: a reply is never another object's.
    misses = _rendered_fallback.cache_info().misses
    assert said(fallback_reply(ifbyphone, flow(), {}, URL)) == [SORRY]
    assert _rendered_fallback.cache_info().misses == misses + 1
    didml = fallback_reply(DIDML, before, {}, URL)
    assert etree.fromstring(didml).tag == "Response"
    assert SORRY in etree.fromstring(didml).findtext("Say")


def test_each_url_keeps_its_own_key() -> None:
    """A fallback that records a message names the next request's URL, with
    the key the request came with."""
    text = (PROJECT_ROOT / "survo_forms" / "verify_caller.yaml").read_text()
    recorded = text.replace(
        f'    - say: "{SORRY}"\n    - hangup', f'    - say: "{SORRY}"\n    - voicemail: 200'
    )
    assert recorded != text
    verify_caller = load_flow_text(recorded, "verify_caller")
    for key in ("first", "second"):
        reply = fallback_reply(
            DIDML, verify_caller, {}, f"https://glue.example.com/didml/v?key={key}"
        )
        [action] = [e.get("action") for e in etree.fromstring(reply).iter("Record")]
        assert action.startswith(f"https://glue.example.com/didml/v?key={key}&")
