"""TwiML / didML rendering (pure)."""

from __future__ import annotations

from lxml import etree

from app.dialects.base import Cursor
from app.dialects.didml import DIDML
from app.dialects.twiml import TWIML
from app.neutral.steps import Hangup, Pause, Play, RunForm, Say, Transfer, Voicemail

CURSOR = Cursor("verified", 0, 2, "https://glue.example.com/twiml/verify_caller")


def test_a_sound_is_a_play_verb() -> None:
    rendered = TWIML.render([Play("https://sounds.example.com/hi.wav"), Hangup()], {}, CURSOR)
    root = etree.fromstring(rendered.body)
    assert [el.tag for el in root] == ["Play", "Hangup"]
    assert root.findtext("Play") == "https://sounds.example.com/hi.wav"


def test_a_redirect_to_a_form_ends_the_reply_and_the_rest_waits() -> None:
    block = {"forms": {"4300": "https://forms.example.com/4300"}}
    steps = [Say("One moment."), RunForm("4300"), Transfer("+13125550101")]
    rendered = DIDML.render(steps, block, CURSOR)
    root = etree.fromstring(rendered.body)
    assert rendered.consumed == 2
    assert [el.tag for el in root] == ["Say", "Redirect"]
    assert root.findtext("Redirect") == "https://forms.example.com/4300"


def test_a_form_without_a_url_is_passed_over() -> None:
    rendered = TWIML.render([RunForm("4300"), Hangup()], {}, CURSOR)
    assert rendered.consumed == 2
    assert [el.tag for el in etree.fromstring(rendered.body)] == ["Hangup"]


def test_twiml_keeps_twilios_attribute_names() -> None:
    """didML spells these its own way (callerid, maxlength, a text pause); TwiML does not."""
    block = {"caller_id": "+13125550100", "voicemail_seconds": 60}
    root = etree.fromstring(TWIML.render([Pause(2), Transfer("+13125550101")], block, CURSOR).body)
    pause, dial, _ = root
    assert (pause.tag, dict(pause.attrib), pause.text) == ("Pause", {"length": "2"}, None)
    assert (dial.tag, dict(dial.attrib)) == ("Dial", {"callerId": "+13125550100"})
    record = etree.fromstring(TWIML.render([Voicemail("200")], block, CURSOR).body).find("Record")
    assert record is not None
    assert set(record.attrib) == {"maxLength", "playBeep", "action", "method"}
    assert (record.get("maxLength"), record.get("playBeep")) == ("60", "true")
