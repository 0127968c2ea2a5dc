"""One caller's try (a claim and a PIN) on any platform, from a number of its
own, as the platform sends it; what the caller then hears, in neutral terms."""

from __future__ import annotations

from typing import Any

from lxml import etree

from tests.conftest import TEST_SECRETS
from tests.test_conformance import Heard, _ifbyphone_heard, _voice_heard, _voipnow_heard
from tests.test_ifbyphone_hook import Caller as IfbyPhoneCaller
from tests.voice_xml_caller import VoiceXmlCall

PLATFORMS = ("ifbyphone", "voipnow", "didml", "twiml")


def attempt(
    client: Any,  # a FlaskClient, or a tests.servers.Balancer
    platform: str,
    call_id: str,
    caller: str,
    claim: str,
    pin: str,
    flow: str = "verify_caller",
) -> Heard:
    """A new call from `caller` that keys in `claim` and `pin` once."""
    if platform == "ifbyphone":
        replies = IfbyPhoneCaller(client, call_id, flow).answer(
            account=claim, pin=pin, caller_id=caller.lstrip("+")
        )
        return _ifbyphone_heard(replies)
    if platform == "voipnow":
        response = client.post(
            f"/voipnow/{flow}/dial-in?key={TEST_SECRETS['VOIPNOW_SECRET']}",
            data={
                "CallID": call_id,
                "CallerIDNum": caller.lstrip("+"),
                "CallFlow": "IN",
                "CallStatus": "CALLING",
                "glue_turn": "",
                "account": claim,
                "pin": pin,
            },
        )
        assert response.status_code == 200, response.data
        return _voipnow_heard(etree.fromstring(response.data))
    call = VoiceXmlCall(client, platform, flow, call_id, caller=caller)
    call.start()
    call.press(claim)
    return _voice_heard(call.press(pin))
