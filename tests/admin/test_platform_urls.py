"""Each platform's URLs for a flow, as the flow page lists them (pure)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app.admin.platform_urls import MASK, PlatformHooks, platform_hooks
from app.flows.loader import load_flow_text
from tests.helpers.flows import BASE

FLOW = load_flow_text(BASE, "night_line")
SECRETS = {"IFBYPHONE_SECRET": "if&by=phone", "VOIPNOW_SECRET": "vn", "DIDML_SECRET": "dd"}


def by_platform(
    config: dict[str, object], base: str = "http://10.0.0.5:5000/"
) -> dict[str, PlatformHooks]:
    return {hooks.platform: hooks for hooks in platform_hooks(config, base, FLOW)}


def test_urls_start_at_the_public_url_with_the_secret_masked_and_copied_whole() -> None:
    hooks = by_platform({"PUBLIC_URL": "https://glue.example.com/", **SECRETS})
    assert list(hooks) == ["ifbyphone", "voipnow", "didml", "twiml"]
    (ifbyphone,) = hooks["ifbyphone"].urls
    assert ifbyphone.shown == f"https://glue.example.com/ifbyphone/night_line?key={MASK}"
    assert parse_qs(urlsplit(ifbyphone.copied).query) == {"key": ["if&by=phone"]}
    assert "4101 and 4102" in hooks["ifbyphone"].setting

    dial_in, dial_out, hangup = hooks["voipnow"].urls
    assert dial_in.label == "Dial-In"
    assert dial_in.copied == (
        "https://glue.example.com/voipnow/night_line/dial-in?key=vn"
        "&account=$account&pin=$pin&glue_turn=$glue_turn"
    )
    assert dial_out.shown.startswith(
        "https://glue.example.com/voipnow/night_line/dial-out?key=" + MASK
    )
    assert hangup.copied == "https://glue.example.com/voipnow/night_line/hangup?key=vn"

    voice, status = hooks["didml"].urls
    assert (voice.copied, status.copied) == (
        "https://glue.example.com/didml/night_line?key=dd",
        "https://glue.example.com/didml/status?key=dd",
    )
    call, twilio_status = hooks["twiml"].urls
    assert call.shown == call.copied == "https://glue.example.com/twiml/night_line"
    assert twilio_status.copied == "https://glue.example.com/twiml/status"
    assert not hooks["twiml"].secret_set  # GLUE_TWILIO_AUTH_TOKEN unset: said on the page


def test_without_a_public_url_the_pages_own_address_and_an_unset_secret_said() -> None:
    hooks = by_platform({"PUBLIC_URL": ""})
    (ifbyphone,) = hooks["ifbyphone"].urls
    assert ifbyphone.shown == "http://10.0.0.5:5000/ifbyphone/night_line?key=NOT_SET"
    assert not hooks["ifbyphone"].secret_set
    assert hooks["ifbyphone"].secret_setting == "GLUE_IFBYPHONE_SECRET"
