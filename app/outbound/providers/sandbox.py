"""The sandbox: a provider and a phone played on this machine; nobody is rung.

`GLUE_CALL_PROVIDER=sandbox` (`make run` sets it when no provider is chosen)
places each call here: the answer is immediate (accepted, a `SANDBOX...` id),
then a thread plays the call through Glue's own status callback as DIDforSale
reports it (initiated, ringing, answered, completed, authenticated by the
`secretKey` DIDforSale would send back), fetching on answer the voice document
the call has (a code read out, or the second party dialled) and logging what
the phone would hear. `flask call fake-provider` plays calls the same way
behind DIDforSale's HTTP API.

Development only: the code a verification call reads is written to the log,
since that is the only phone there is. A deployment never runs it unless its
configuration names it, and then the web page says "sandbox" plainly.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import requests
from lxml import etree

from app.outbound.providers.base import (
    MASK,
    CallRequest,
    CallResult,
    InvalidCallRequest,
    Outcome,
    e164,
    reject_unsupported,
)

log = logging.getLogger(__name__)
_numbers = itertools.count(1)

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class SandboxSettings:
    answer_after: float = 2.0  # seconds of ringing before the phone answers
    talk_seconds: float = 4.0  # seconds between answer and hang-up
    callback_secret: str = ""  # sent back as DIDforSale's `apikey` (GLUE_DIDML_SECRET)
    caller_id: str | None = None


class Sandbox:
    """Accept every well-formed call and play it back to Glue."""

    name = "sandbox"

    def __init__(self, settings: SandboxSettings, say: Say | None = None) -> None:
        self.settings = settings
        self.say: Say = say or (lambda line: log.info("sandbox: %s", line))

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self, provider_call_id: str) -> CallResult:
        """REFUSED: the sandbox plays every call it accepted to its end."""
        return CallResult(Outcome.REFUSED, "the sandbox plays every call to its end", final=True)

    def place_call(self, request: CallRequest) -> CallResult:
        """Accepted at once; the call's life follows on a thread."""
        reject_unsupported(self.name, request, ("at", "survo_id", "user_parameters"))
        to = e164(request.to_number, "to_number")
        url = request.voice_url or (request.dial_url if request.connect_to else None)
        if not url and not request.connect_to:
            raise InvalidCallRequest("sandbox: needs connect_to or voice_url")
        form = {
            "to": to.lstrip("+"),
            "from": (request.caller_id or self.settings.caller_id or "").lstrip("+"),
            "url": url or "",
            "statusCallback": request.status_callback or "",
            "secretKey": self.settings.callback_secret,
            "optional": request.reference or "",
        }
        sid = f"SANDBOX{next(_numbers):06d}"
        self.say(f"call {sid}: ringing {request.to_number}")
        threading.Thread(
            target=play,
            args=(sid, form, self.settings.answer_after, self.say, self.settings.talk_seconds),
            daemon=True,
        ).start()
        # `url` carries the voice document's one-time token.
        sent = {k: MASK if k in ("url", "secretKey") else v for k, v in form.items() if v}
        return CallResult(Outcome.ACCEPTED, f"sandbox call {sid}", (sid,), sent=sent)


def play(
    sid: str, form: Mapping[str, Any], answer_after: float, say: Say, talk_seconds: float = 4.0
) -> None:
    """The call's life, reported as DIDforSale reports it (form: its call fields)."""
    steps = [
        ("initiated", 0.3),
        ("ringing", 0.7),
        ("answered", answer_after),
        ("completed", talk_seconds),
    ]
    for status, pause in steps:
        time.sleep(pause)
        if status == "answered" and form.get("url"):
            read_voice_document(form["url"], say)
        report(sid, form, status, say)


def report(sid: str, form: Mapping[str, Any], status: str, say: Say) -> None:
    callback = form.get("statusCallback")
    if not callback:
        return
    data = {
        "callSid": sid,
        "CallStatus": status,
        "Called": form.get("to", ""),
        "Direction": "Outbound",
        "CallbackSource": "call-progress-event",
        "apikey": form.get("secretKey", ""),
        "optional": form.get("optional", ""),
    }
    if status == "completed":
        data["CallDuration"] = "4"
    try:
        answer = requests.post(callback, data=data, timeout=5)
        say(f"call {sid}: {status} -> Glue answered {answer.status_code}")
    except requests.RequestException as exc:
        say(f"call {sid}: {status} -> could not reach Glue: {exc}")


def read_voice_document(url: str, say: Say) -> None:
    """What the phone would hear of a voice document: its Say texts and dials."""
    try:
        document = etree.fromstring(
            requests.post(url, timeout=5).content,
            etree.XMLParser(resolve_entities=False, no_network=True),
        )
    except (requests.RequestException, etree.XMLSyntaxError) as exc:
        say(f"could not fetch the voice document: {exc}")
        return
    for element in document.iter("Say", "Number"):
        if element.tag == "Say":
            say(f'the phone says: "{element.text}"')
        else:
            say(f"the phone is connected to {element.text}")
