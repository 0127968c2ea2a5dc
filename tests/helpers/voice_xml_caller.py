"""A phone call on didML or TwiML, played as the platform plays it (for tests)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from lxml import etree
from twilio.request_validator import RequestValidator

from tests.helpers.settings import TEST_SECRETS

BASE = "http://localhost"


class VoiceXmlCall:
    """Starts a call, then follows `<Gather>` actions and `<Redirect>`s like the platform."""

    def __init__(
        self,
        client: FlaskClient,
        platform: str,
        flow: str,
        call_id: str,
        caller: str = "+13125550199",
    ) -> None:
        self.client, self.platform, self.flow = client, platform, flow
        self.fields = {
            "CallSid" if platform == "twiml" else "callSid": call_id,
            "From": caller,
            "To": "+18005551212",
            "CallStatus": "in-progress",
            "Direction": "inbound",
        }
        self.last: etree._Element | None = None
        self.bodies: list[bytes] = []

    def start(self) -> etree._Element:
        query = f"?key={TEST_SECRETS['DIDML_SECRET']}" if self.platform == "didml" else ""
        return self.post(f"{BASE}/{self.platform}/{self.flow}{query}")

    def press(self, digits: str) -> etree._Element:
        gather = self._current().find("Gather")
        assert gather is not None, "the last reply asked nothing"
        return self.post(gather.get("action", ""), Digits=digits)

    def silence(self) -> etree._Element:
        redirect = self._current().find("Redirect")
        assert redirect is not None and "silence=1" in (redirect.text or "")
        return self.post(redirect.text or "")

    def post(self, url: str, **extra: str) -> etree._Element:
        response = self.raw(url, **extra)
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        self.bodies.append(response.data)
        self.last = etree.fromstring(response.data)
        assert self.last.tag == "Response"
        return self.last

    def raw(self, url: str, **extra: str) -> Any:
        data = {**self.fields, **extra}
        headers = {}
        if self.platform == "twiml":
            validator = RequestValidator(TEST_SECRETS["TWILIO_AUTH_TOKEN"])
            headers["X-Twilio-Signature"] = validator.compute_signature(url, data)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(path, data=data, headers=headers)

    def _current(self) -> etree._Element:
        assert self.last is not None, "start the call first"
        return self.last


def says(response: etree._Element) -> list[str]:
    """Everything the caller hears, in order (prompts inside `<Gather>` included)."""
    return [el.text or "" for el in response.iter("Say")]
