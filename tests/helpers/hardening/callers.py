"""One caller's try (a claim and a PIN) on any platform, from a number of its
own, as the platform sends it; what the caller then hears, in neutral terms."""

from __future__ import annotations

from typing import Any

from lxml import etree

from tests.helpers.ifbyphone import Caller as IfbyPhoneCaller
from tests.helpers.journeys import Heard, ifbyphone_heard, voice_heard, voipnow_heard
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.voice_xml_caller import VoiceXmlCall

PLATFORMS = ("ifbyphone", "voipnow", "didml", "twiml")


def attempt(
    client: Any,  # a FlaskClient, or a tests.helpers.servers.Balancer
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
        return ifbyphone_heard(replies)
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
        return voipnow_heard(etree.fromstring(response.data))
    call = VoiceXmlCall(client, platform, flow, call_id, caller=caller)
    call.start()
    call.press(claim)
    return voice_heard(call.press(pin))
