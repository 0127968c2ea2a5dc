"""didML rendering, verb by verb, against the names DIDforSale documents.

XML is case-sensitive: a TwiML spelling (`callerId`) is an attribute didML does
not know. Each test renders one kind of step and checks the exact element and
attribute names Glue writes against DOCUMENTED, transcribed below from
DIDforSale's didML reference (the "Attributes" table of each verb's page).

DIDforSale writes some verbs capitalised and some not (`<Say>`, `<Gather>` but
`<dial>`, `<number>`, `<pause>`): Glue keeps the capitalised verbs of its verb
list. Its tables capitalise a few names (`Method`, `Timeout`, `Tries`, `Action`,
`Language`) that its examples write in lower case (`method="..."`,
`timeout="10"`, `action="..."`): the examples' spelling is the one below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy.orm import Session

from app.dialects.base import Cursor
from app.dialects.didml import DIDML
from app.neutral.steps import (
    Ask,
    FindMe,
    Hangup,
    Pause,
    Play,
    Prompt,
    RunForm,
    Say,
    SayDigits,
    Step,
    Transfer,
    Voicemail,
)
from app.outbound import codes
from tests.helpers.directory import HASHER, add_user

CURSOR = Cursor("verified", 0, 2, "https://glue.example.com/didml/verify_caller?key=k")

# Every attribute each verb takes, as DIDforSale spells it, and where it is written.
DOCUMENTED: Mapping[str, Mapping[str, str]] = {
    "Say": {
        "action": "<say>, Attributes table",
        "method": "<say>, Attributes table (`Method`)",
        "voice": "<say>, Attributes table; example `<Say voice=...>`",
        "loop": "<say>, Attributes table; example `<Say ... loop=10>`",
        "language": "<say>, Attributes table (`Language`)",
    },
    "Play": {
        "loop": "<play>, Attributes table",
    },
    "Gather": {
        "action": "<gather>, Attributes table; <play>'s example `<Gather ... action=...>`",
        "method": "<gather>, Attributes table (`Method`)",
        "minDigits": "<gather>, Attributes table",
        "numDigits": "<gather>, Attributes table",
        "timeout": '<gather>, Attributes table (`Timeout`); <play>\'s example `timeout="10"`',
        "tries": "<gather>, Attributes table (`Tries`)",
        "audiotype": "<gather>, Attributes table (`Audiotype`)",
        "finishOnKey": '<gather>, Attributes table; <play>\'s example `finishOnKey="*"`',
    },
    "Dial": {
        "action": "<dial>, Attributes table",
        "method": "<dial>, Attributes table (`Method`)",
        "timeout": '<dial>, Attributes table; example `<dial record="on" timeout="60">`',
        "timelimit": "<dial>, Attributes table",
        "callerid": "<dial>, Attributes table",
        "record": '<dial>, example `<dial record="on" ...>`',
    },
    "Number": {
        "url": "<number>, Attributes table",
        "method": "<number>, Attributes table (`Method`)",
        "senddigits": "<number>, Attributes table",
        "statusCallbackEvent": "<number>, Attributes table",
        "statusCallback": "<number>, Attributes table",
        "statusCallbackMethod": "<number>, Attributes table",
        "maxlength": "<number>, Attributes table; example `<number maxlength=60 ...>`",
        "callerid": "<number>, Attributes table",
        "timeout": "<number>, Attributes table (`timout`); example `<number ... timeout=15>`",
        "record": "<number>, Attributes table",
    },
    "Hangup": {},  # <hangup>: "does not require any attribute"
    "Redirect": {
        "method": "<redirect>, Attributes table (`Method`): 'Only attribute offered ... is method'",
    },
    "Pause": {},  # <pause>: "does not have any attributes"; the text is milliseconds
    "Record": {
        "action": "<record>, Attributes table (`Action`); example `<Record ... action=...>`",
        "method": "<record>, Attributes table (`Method`)",
        "fileID": "<record>, Attributes table",
        "maxlength": "<record>, Attributes table (`maxlength (Seconds)`)",
        "confirmrecording": "<record>, Attributes table",
    },
}


def render(steps: Sequence[Step], block: Mapping[str, Any] | None = None) -> etree._Element:
    return etree.fromstring(DIDML.render(steps, block or {}, CURSOR).body)


def documented(element: etree._Element) -> None:
    """Every element and attribute Glue wrote is one didML has, spelled its way."""
    for node in element.iter():
        if node.tag == "Response":
            continue
        assert node.tag in DOCUMENTED, f"<{node.tag}> is no didML verb"
        unknown = set(node.attrib) - set(DOCUMENTED[node.tag])
        assert not unknown, f"<{node.tag}> has no attribute {sorted(unknown)} in didML"


def test_say_takes_voice_and_language() -> None:
    root = render([Say("Hello."), SayDigits("1001")], {"voice": "woman", "language": "en"})
    documented(root)
    assert [el.tag for el in root] == ["Say", "Say"]
    assert [dict(el.attrib) for el in root] == [{"voice": "woman", "language": "en"}] * 2
    assert [el.text for el in root] == ["Hello.", "1 0 0 1"]


def test_play_is_the_sound_url_as_text() -> None:
    root = render([Play("https://sounds.example.com/hi.wav")])
    documented(root)
    [play] = root
    assert (play.tag, dict(play.attrib), play.text) == (
        "Play",
        {},
        "https://sounds.example.com/hi.wav",
    )


def test_gather_uses_didml_names_and_one_try() -> None:
    prompt = Prompt("pin", "Your PIN, then pound.", min_digits=4, max_digits=8, timeout=7)
    root = render([Ask(("pin",), prompt)])
    documented(root)
    gather, redirect = root
    assert gather.tag == "Gather"
    assert set(gather.attrib) == {
        "action",
        "method",
        "timeout",
        "finishOnKey",
        "numDigits",
        "minDigits",
        "tries",
    }
    assert (gather.get("method"), gather.get("timeout"), gather.get("finishOnKey")) == (
        "POST",
        "7",
        "#",
    )
    assert (gather.get("numDigits"), gather.get("minDigits"), gather.get("tries")) == (
        "8",
        "4",
        "1",
    )
    assert "question=pin" in (gather.get("action") or "")
    assert [(el.tag, el.text) for el in gather] == [("Say", "Your PIN, then pound.")]
    assert (redirect.tag, dict(redirect.attrib)) == ("Redirect", {"method": "POST"})


def test_dial_sets_callerid_in_didml_spelling() -> None:
    root = render([Transfer("+13125550101")], {"caller_id": "+13125550100"})
    documented(root)
    dial, hangup = root
    assert (dial.tag, dict(dial.attrib)) == ("Dial", {"callerid": "+13125550100"})
    assert [(el.tag, dict(el.attrib), el.text) for el in dial] == [("Number", {}, "+13125550101")]
    assert (hangup.tag, dict(hangup.attrib)) == ("Hangup", {})


def test_find_me_dials_every_number_in_one_dial() -> None:
    numbers = ("+13125550101", "+13125550102")
    root = render([FindMe(numbers=numbers)], {"caller_id": "+13125550100"})
    documented(root)
    [dial] = root.findall("Dial")
    assert dict(dial.attrib) == {"callerid": "+13125550100"}
    assert [el.text for el in dial.iter("Number")] == list(numbers)


def test_dial_without_a_caller_id_has_no_attribute() -> None:
    root = render([Transfer("+13125550101")])
    assert dict(root.find("Dial").attrib) == {}  # type: ignore[union-attr]


def test_hangup_has_no_attribute() -> None:
    root = render([Say("Goodbye."), Hangup()])
    documented(root)
    assert (root[-1].tag, dict(root[-1].attrib)) == ("Hangup", {})
    assert etree.fromstring(DIDML.render_hangup()).find("Hangup").attrib == {}  # type: ignore[union-attr]


def test_redirect_takes_only_method() -> None:
    root = render([RunForm("4300")], {"forms": {"4300": "https://forms.example.com/4300"}})
    documented(root)
    [redirect] = root
    assert (redirect.tag, dict(redirect.attrib), redirect.text) == (
        "Redirect",
        {"method": "POST"},
        "https://forms.example.com/4300",
    )


def test_pause_is_milliseconds_as_text_with_no_attribute() -> None:
    root = render([Pause(2)])
    documented(root)
    [pause] = root
    assert (pause.tag, dict(pause.attrib), pause.text) == ("Pause", {}, "2000")


def test_record_uses_maxlength_and_no_play_beep() -> None:
    root = render([Voicemail("200")], {"voicemail_seconds": 60})
    documented(root)
    assert [el.tag for el in root] == ["Say", "Record", "Hangup"]
    record = root[1]
    assert set(record.attrib) == {"maxlength", "action", "method"}
    assert (record.get("maxlength"), record.get("method")) == ("60", "POST")
    assert "recorded=200" in (record.get("action") or "")


def test_voicemail_to_a_number_dials_it_with_callerid() -> None:
    block = {"voicemail": {"200": "+13125550200"}, "caller_id": "+13125550100"}
    root = render([Voicemail("200")], block)
    documented(root)
    assert dict(root.find("Dial").attrib) == {"callerid": "+13125550100"}  # type: ignore[union-attr]


def test_the_code_call_document_pauses_the_didml_way(client: FlaskClient, session: Session) -> None:
    """Only DIDforSale fetches a voice document (a verification call's `url`)."""
    user = add_user(session, "1005", "Linus", "3579")
    issued = codes.issue(session, HASHER, user, "+13125550177")
    session.commit()
    url = f"/calls/voice/{issued.record.id}/{codes.token_of(HASHER, issued.record)}"
    root = etree.fromstring(client.post(url).data)
    documented(root)
    assert [el.tag for el in root] == ["Say", "Pause", "Say", "Pause", "Hangup"]
    assert [(dict(el.attrib), el.text) for el in root.iter("Pause")] == [({}, "1000")] * 2
