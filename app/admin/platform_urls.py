"""Where each platform must send a flow's requests: the URLs to paste, and what else to set.

Pure: settings and the flow in, URLs out. Each URL is given twice: as shown
on the page (the shared secret masked) and as copied (the secret in it), since
the platform needs the secret and the page must not display it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from app.flows.model import Flow

MASK = "••••••••"


@dataclass(frozen=True)
class HookUrl:
    label: str  # e.g. "Dial-In"
    shown: str  # the URL with the secret masked
    copied: str  # the URL as the platform needs it


@dataclass(frozen=True)
class PlatformHooks:
    platform: str  # the dialect's name, as in the URL
    title: str
    urls: tuple[HookUrl, ...]
    setting: str  # what to set where, one sentence
    doc: str  # the page of docs/platforms/ that says more
    secret_setting: str  # the GLUE_ setting that authenticates its requests
    secret_set: bool


def platform_hooks(config: Mapping[str, object], base_url: str, flow: Flow) -> list[PlatformHooks]:
    """Every platform's URLs for the flow, from GLUE_PUBLIC_URL (else base_url)."""
    base = (str(config.get("PUBLIC_URL") or "") or base_url).rstrip("/")
    name = quote(flow.name, safe="")

    def keyed(path: str, secret_key: str, extra: str = "") -> tuple[str, str]:
        secret = str(config.get(secret_key) or "")
        shown = f"{base}{path}?key={MASK if secret else 'NOT_SET'}{extra}"
        return shown, f"{base}{path}?key={quote(secret, safe='')}{extra}"

    questions = "".join(f"&{q.name}=${q.name}" for q in flow.questions)
    voipnow_asks = f"{questions}&glue_turn=$glue_turn"
    ifbyphone = keyed(f"/ifbyphone/{name}", "IFBYPHONE_SECRET")
    dial_in = keyed(f"/voipnow/{name}/dial-in", "VOIPNOW_SECRET", voipnow_asks)
    dial_out = keyed(f"/voipnow/{name}/dial-out", "VOIPNOW_SECRET", voipnow_asks)
    hangup = keyed(f"/voipnow/{name}/hangup", "VOIPNOW_SECRET")
    didml = keyed(f"/didml/{name}", "DIDML_SECRET")
    didml_status = keyed("/didml/status", "DIDML_SECRET")
    twiml = f"{base}/twiml/{name}"
    survos = flow.platform("ifbyphone")
    survo_ids = [str(survos[key]) for key in ("survo", "say_survo") if survos.get(key)]
    in_survos = f" ({' and '.join(survo_ids)})" if survo_ids else ""
    return [
        PlatformHooks(
            "ifbyphone",
            "IfbyPhone (SurVo)",
            (HookUrl("Post results to URL", *ifbyphone),),
            f"In both SurVos{in_survos}, the one asking the questions and the one reading "
            "the message, set the action after the survey to post the results to this URL, "
            "method POST.",
            "platforms/ifbyphone.md",
            "GLUE_IFBYPHONE_SECRET",
            bool(config.get("IFBYPHONE_SECRET")),
        ),
        PlatformHooks(
            "voipnow",
            "4PSA VoipNow (Call Interactive)",
            (
                HookUrl("Dial-In", *dial_in),
                HookUrl("Dial-Out", *dial_out),
                HookUrl("Hangup", *hangup),
            ),
            "In the IVR's CallAPI interactive actions, one URL per event, method GET or POST; "
            "the ask context records each question into a variable of the same name ("
            + ", ".join(q.name for q in flow.questions)
            + ").",
            "platforms/voipnow.md",
            "GLUE_VOIPNOW_SECRET",
            bool(config.get("VOIPNOW_SECRET")),
        ),
        PlatformHooks(
            "didml",
            "DIDforSale (didML)",
            (HookUrl("Voice URL", *didml), HookUrl("Status callback", *didml_status)),
            "Set the number's voice URL (or an outbound call's url) to the first, method POST, "
            "and its status callback to the second.",
            "platforms/didforsale.md",
            "GLUE_DIDML_SECRET",
            bool(config.get("DIDML_SECRET")),
        ),
        PlatformHooks(
            "twiml",
            "Twilio (TwiML)",
            (
                HookUrl("A call comes in", twiml, twiml),
                HookUrl("Status callback", f"{base}/twiml/status", f"{base}/twiml/status"),
            ),
            'In the phone number\'s settings, "A call comes in": Webhook, HTTP POST. '
            "No key in the URL: requests are checked by their X-Twilio-Signature.",
            "platforms/twilio.md",
            "GLUE_TWILIO_AUTH_TOKEN",
            bool(config.get("TWILIO_AUTH_TOKEN")),
        ),
    ]
