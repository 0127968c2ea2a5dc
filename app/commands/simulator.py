"""`flask call simulate`: a phone in the terminal, playing a platform against a running Glue.

It sends what IfbyPhone, VoipNow, DIDforSale (didML) or Twilio (TwiML) would
send, over HTTP with the secrets of this app's configuration (the server's own
when both use the same instance folder or GLUE_* environment), prints what the
caller would hear, takes the caller's keys from the terminal (`keys> `) or from
`--digits`, follows every reply until the call leaves Glue, and prints the path
the call took.

The platform's side of a flow (IfbyPhone's SurVo ids, VoipNow's IVR contexts,
the questions a platform form asks) comes from the flow as this app loads it.
The outcome of each answer (verified, retry, ...) cannot be heard on every
platform, so the path takes it from the call's events in this app's database
when that is the server's too, and leaves it out when it is not.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import click
import phonenumbers
import requests
from flask import current_app
from flask.cli import AppGroup
from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.db import get_session
from app.flows.model import Flow
from app.flows.registry import current_registry
from app.hooks.twilio_signature import SIGNATURE_HEADER, compute_signature
from app.models import Call, CallEvent
from app.neutral.fields import listing
from app.neutral.phones import try_e164, unformatted

PLATFORMS = ("ifbyphone", "voipnow", "didml", "twiml")
DEFAULT_URL = "http://127.0.0.1:5000"
# A call still going after this many requests is going round in circles.
MAX_REQUESTS = 60
CALLED_NUMBER = "+13125550000"  # the number the simulated caller dialled
KEYS = re.compile(r"[0-9*#]*")
# Outcomes of a turn that are no news on the path: a question asked, a replay.
QUIET_OUTCOMES = frozenset({"asking", "stale"})
# Untrusted XML: no entities, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

call_cli = AppGroup("call", help="Try a flow without a phone.")


class SimulationError(Exception):
    """The call cannot go on: no connection, an HTTP error or an answer that is no XML."""


def parse_digits(text: str) -> list[str]:
    """`1001#2468#` → ["1001", "2468"]: answers separated by #, the last # optional;
    an empty answer (`1001##`) is silence."""
    if not text:
        return []
    pieces = text.split("#")
    if text.endswith("#"):
        pieces.pop()
    return pieces


class Keypad:
    """The caller's keys: from --digits (then silence), or typed at `keys> `."""

    def __init__(
        self,
        scripted: list[str] | None,
        echo: Callable[[str], None],
        read: Callable[[str], str] = input,
    ) -> None:
        self.scripted, self.echo, self.read = scripted, echo, read
        self.closed = False  # end of input: silence from now on
        self.typed_ahead: list[str] = []  # `1001#2468#` typed on one line: the rest

    def press(self) -> str:
        """One answer; "" is silence."""
        if self.scripted is not None:
            keys = self.scripted.pop(0) if self.scripted else ""
            self.echo(f"keys> {keys or '(silence)'}")
            return keys
        if self.typed_ahead:
            keys = self.typed_ahead.pop(0)
            self.echo(f"keys> {keys}")
            return keys
        if self.closed:
            self.echo("keys> (silence)")
            return ""
        while True:
            try:
                line = self.read("keys> ")
            except EOFError:
                self.closed = True
                self.echo("(silence)")  # ends the prompt's line
                return ""
            # `#` ends an answer: several answers may be typed on one line.
            answers = parse_digits(line.strip()) or [""]
            if all(KEYS.fullmatch(keys) for keys in answers):
                self.typed_ahead = answers[1:]
                return answers[0]
            self.echo("  (a phone has only 0-9, * and #; an empty line is silence)")


@dataclass
class Transcript:
    """What the caller hears, printed as it happens, and the path for the summary."""

    echo: Callable[[str], None]
    # ("asked", name, silent) ("outcome", request index) ("said", text)
    # ("played", sound) ("end", text)
    path: list[tuple[str, ...]] = field(default_factory=list)
    ended: bool = False

    def says(self, text: str) -> None:
        self.echo(f'  says "{text}"')
        self.path.append(("said", text))

    def plays(self, sound: str) -> None:
        self.echo(f"  plays {sound}")
        self.path.append(("played", sound))

    def pauses(self, seconds: str) -> None:
        self.echo(f"  (pause, {seconds} s)")

    def note(self, text: str) -> None:
        self.echo(f"  ({text})")

    def asks(self, name: str, prompt: str | None) -> None:
        self.echo(f'  asks {name}: "{prompt}"' if prompt else f"  asks {name}")

    def answered(self, name: str, keys: str) -> None:
        self.path.append(("asked", name, "" if keys else "silent"))

    def outcome_of(self, request: int) -> None:
        """The outcome of request number `request` (from the database) goes here."""
        self.path.append(("outcome", str(request)))

    def ends(self, heard: str, path: str) -> None:
        self.echo(f"  {heard}")
        self.path.append(("end", path))
        self.ended = True

    def summary(self, outcomes: list[str | None] | None) -> str:
        """`asked account, pin → verified → said "..." → transfer to +1...`"""
        parts: list[str] = []
        asked: list[str] = []
        for kind, *rest in self.path:
            if kind == "outcome":
                index = int(rest[0])
                outcome = outcomes[index] if outcomes and index < len(outcomes) else None
                if outcome is None or outcome in QUIET_OUTCOMES:
                    continue
                text = outcome
            elif kind == "asked":
                asked.append(rest[0] + (" (no input)" if rest[1] else ""))
                continue
            elif kind == "said":
                text = f'said "{rest[0]}"'
            elif kind == "played":
                text = f"played {rest[0]}"
            else:
                text = rest[0]
            if asked:
                parts.append("asked " + ", ".join(asked))
                asked = []
            parts.append(text)
        if asked:
            parts.append("asked " + ", ".join(asked))
        return " → ".join(parts)


class Http:
    """POSTs to the running Glue; every answer must be XML with a 2xx status."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base, self.timeout = base, timeout
        self.session = requests.Session()

    def post(
        self,
        url: str,
        data: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> etree._Element:
        shown = _without_key(url)
        try:
            response = self.session.post(
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise SimulationError(f"cannot reach Glue at {shown}: {exc}") from None
        body = response.text.strip()
        if response.status_code >= 400:
            raise SimulationError(
                f"{response.status_code} {response.reason} from {shown}\n{body[:2000]}"
            )
        try:
            return etree.fromstring(response.content, _PARSER)
        except (etree.XMLSyntaxError, ValueError):
            raise SimulationError(
                f"{response.status_code} from {shown} is no XML:\n{body[:2000] or '(empty)'}"
            ) from None


@dataclass
class SimulatedCall:
    """What every simulated platform needs to know about the call."""

    platform: str
    flow_name: str
    flow: Flow
    caller: str
    call_id: str
    http: Http
    keypad: Keypad
    transcript: Transcript
    secret: str
    region: str
    public_base: str  # the base URL Glue names in its replies (GLUE_PUBLIC_URL)
    sent: int = 0  # turn requests sent, in order: event i of the call answers request i

    def question_names(self) -> list[str]:
        return [q.name for q in self.flow.questions]

    def prompt(self, name: str) -> str | None:
        question = self.flow.question(name)
        return question.prompt if question else None

    def ask(self, name: str, prompt: str | None = None) -> str:
        """Ask one question; the keys, "" for silence."""
        self.transcript.asks(name, prompt if prompt is not None else self.prompt(name))
        keys = self.keypad.press()
        self.transcript.answered(name, keys)
        return keys

    def turn(self, answering: bool) -> int:
        """Count a request of the call; an answer's outcome goes on the path."""
        index = self.sent
        self.sent += 1
        if answering:
            self.transcript.outcome_of(index)
        return index

    def e164(self, number: str) -> str:
        return try_e164(number, self.region) or number


def run_ifbyphone(call: SimulatedCall) -> None:
    """A SurVo asks the flow's questions and posts them all; each reply is one
    building block; a SurVo that reads a message posts back with its p_t."""
    block = call.flow.platform("ifbyphone")
    ask_survo, say_survo = str(block.get("survo", "")), str(block.get("say_survo", ""))
    say_parameter = str(block.get("say_parameter") or "message")
    url = f"{call.http.base}/ifbyphone/{call.flow_name}"

    def send(p_t: str, answers: Mapping[str, str], answering: bool) -> etree._Element:
        call.turn(answering)
        fields = {
            "caller_id": call.caller,
            "session_id": call.call_id,
            "timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "p_t": p_t,
            **answers,
        }
        return call.http.post(url, fields, params={"key": call.secret})

    def ask_all() -> dict[str, str]:
        # A question the caller skips arrives as NA.
        return {name: call.ask(name) or "NA" for name in call.question_names()}

    reply = send("", ask_all(), answering=True)
    for _ in range(MAX_REQUESTS):
        if reply.tag != "action":
            raise SimulationError(f"IfbyPhone expects <action>, got <{reply.tag}>")
        app = reply.findtext("app")
        parameters = {el.tag: el.text or "" for el in reply.iterfind("parameters/*")}
        if app == "survo":
            survo_id, p_t = parameters.get("id", ""), parameters.get("p_t", "")
            if survo_id == ask_survo:
                reply = send(p_t, ask_all(), answering=True)
                continue
            user_parameters = {
                el.tag: el.text or "" for el in reply.iterfind("parameters/user_parameters/*")
            }
            if survo_id == say_survo and say_survo:
                call.transcript.says(user_parameters.get(say_parameter, ""))
            else:
                shown = ", ".join(f"{k}={v}" for k, v in user_parameters.items())
                call.transcript.note(f"runs SurVo {survo_id}" + (f" with {shown}" if shown else ""))
            reply = send(p_t, {}, answering=False)
            continue
        _end_ifbyphone(call, app or "", parameters)
        return
    raise SimulationError(f"the call did not end after {MAX_REQUESTS} requests")


def _end_ifbyphone(call: SimulatedCall, app: str, parameters: Mapping[str, str]) -> None:
    say = call.transcript.ends
    if app == "transfer":
        number = call.e164(parameters.get("destination", ""))
        say(f"transferred to {number}", f"transfer to {number}")
    elif app == "findme" and parameters.get("id"):
        say(f"rings Find Me list {parameters['id']}", f"find me list {parameters['id']}")
    elif app == "findme":
        numbers = ", ".join(call.e164(n) for n in parameters.get("phone_list", "").split("|"))
        say(f"rings {numbers} (Find Me)", f"find me {numbers}")
    elif app == "vr":
        say(f"goes to Virtual Receptionist {parameters.get('id')}", f"menu {parameters.get('id')}")
    elif app == "voicemail":
        box = parameters.get("id", "")
        say(f"recording a voicemail (box {box})", f"voicemail {box}")
    elif app == "hangup":
        say("hangs up", "hangup")
    else:
        raise SimulationError(f"IfbyPhone has no building block {app!r}")


def run_voipnow(call: SimulatedCall) -> None:
    """The IVR records the flow's questions into variables and calls Glue with
    them; each reply's verbs run in order until a Jump or a Hangup."""
    block = call.flow.platform("voipnow")
    contexts = {str(block[k]): k for k in ("transfer_context", "voicemail_context") if block.get(k)}
    ask_context = str(block.get("ask_context", ""))
    findme_context = str(block.get("findme_context", ""))
    transfer_variable = str(block.get("transfer_variable") or "transfer_to")
    number_format = str(block.get("number_format") or "international")
    base = f"{call.http.base}/voipnow/{call.flow_name}"
    event = {
        "CallID": call.call_id,
        "CallerIDNum": call.caller,
        "CallerIDName": "Simulator",
        "CalledNumber": CALLED_NUMBER.lstrip("+"),
        "CallFlow": "IN",
    }
    variables: dict[str, str] = {}
    names = call.question_names()
    to_ask = names

    def number(raw: str) -> str:
        if number_format == "international" and raw.isdigit():
            raw = f"+{raw}"
        return call.e164(raw)

    for _ in range(MAX_REQUESTS):
        for name in to_ask:
            variables[name] = call.ask(name)
        # The admin's URL sends the variables: `&account=$account&glue_turn=$glue_turn`;
        # an unset or empty one arrives as null.
        query = {"key": call.secret}
        query |= {name: variables.get(name) or "null" for name in [*names, "glue_turn"]}
        call.turn(answering=True)
        reply = call.http.post(f"{base}/dial-in", {**event, "CallStatus": "CALLING"}, query)
        if reply.tag != "Response":
            raise SimulationError(f"VoipNow expects <Response>, got <{reply.tag}>")
        set_now: dict[str, str] = {}
        jump: str | None = None
        for verb in reply:
            if verb.tag == "SetVar":
                name, value = verb.get("name", ""), verb.text or ""
                variables[name] = set_now[name] = value
            elif verb.tag == "PlayTTS":
                call.transcript.says(verb.text or "")
            elif verb.tag == "PlaySound":
                call.transcript.plays(verb.text or "")
            elif verb.tag == "Pause":
                call.transcript.pauses(verb.get("length", "1"))
            elif verb.tag == "SetCaller":
                call.transcript.note(f"caller ID shown: {verb.get('name')} {verb.get('number')}")
            elif verb.tag == "Hangup":
                call.transcript.ends("hangs up", "hangup")
                break
            elif verb.tag == "Jump":
                jump = verb.get("context", "")
                break
            elif isinstance(verb.tag, str):
                call.transcript.note(f"ignores <{verb.tag}>")
        if jump is not None and jump == ask_context:
            # Glue empties the variables of the questions it asks again.
            to_ask = [name for name in names if set_now.get(name) == ""] or names
            continue
        if jump is not None:
            kind = contexts.get(jump)
            if "findme_to" in set_now and (kind == "transfer_context" or jump == findme_context):
                numbers = ", ".join(number(n) for n in set_now["findme_to"].split("&"))
                call.transcript.ends(f"rings {numbers} (Find Me)", f"find me {numbers}")
            elif kind == "transfer_context":
                numbers = number(variables.get(transfer_variable, ""))
                call.transcript.ends(f"transferred to {numbers}", f"transfer to {numbers}")
            elif kind == "voicemail_context":
                box = variables.get("voicemail_box", "")
                call.transcript.ends(f"recording a voicemail (box {box})", f"voicemail {box}")
            else:
                call.transcript.ends(f"goes to IVR context {jump}", f"context {jump}")
        elif not call.transcript.ended:
            call.transcript.ends("(no more verbs: the IVR goes on by itself)", "end of reply")
        # VoipNow tells Glue the call is over; the answer is an empty <Response/>.
        hangup = {**event, "CallStatus": "ANSWER", "EventType": "hangup"}
        call.http.post(f"{base}/hangup", hangup, {"key": call.secret})
        return
    raise SimulationError(f"the call did not end after {MAX_REQUESTS} requests")


def run_voice_xml(call: SimulatedCall) -> None:
    """didML / TwiML: the platform fetches the flow's URL and runs each
    `<Response>` verb by verb; a `<Gather>` posts the keys to its action, and
    silence falls through to the next verb (Glue's `<Redirect>`)."""
    twiml = call.platform == "twiml"
    fields = {
        "CallSid" if twiml else "callSid": call.call_id,
        "From": call.caller,
        "To": CALLED_NUMBER,
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }
    if twiml:
        fields |= {
            "AccountSid": "AC" + "0" * 32,
            "Caller": call.caller,
            "Called": CALLED_NUMBER,
            "ApiVersion": "2010-04-01",
        }
    start = f"/{call.platform}/{call.flow_name}"
    if not twiml:
        start += "?" + urlencode({"key": call.secret})

    def post(path: str, extra: Mapping[str, str]) -> etree._Element:
        call.turn(answering="question" in parse_qs(urlsplit(path).query))
        data = {**fields, **extra}
        headers = {}
        if twiml:  # signed over the URL Glue sees (its public one) and the fields
            signature = compute_signature(call.secret, call.public_base + path, data)
            headers[SIGNATURE_HEADER] = signature
        reply = call.http.post(call.http.base + path, data, headers=headers)
        if reply.tag != "Response":
            raise SimulationError(f"{call.platform} expects <Response>, got <{reply.tag}>")
        return reply

    reply = post(start, {})
    for _ in range(MAX_REQUESTS):
        following: tuple[str, dict[str, str]] | None = None
        for verb in reply:
            following = _voice_verb(call, verb)
            if following is not None or call.transcript.ended:
                break
        if call.transcript.ended:
            return
        if following is None:
            call.transcript.ends("(no more verbs: the platform hangs up)", "hangup")
            return
        reply = post(*following)
    raise SimulationError(f"the call did not end after {MAX_REQUESTS} requests")


def _voice_verb(call: SimulatedCall, verb: etree._Element) -> tuple[str, dict[str, str]] | None:
    """Play one verb; the request it leads to (path and fields), if any."""
    heard = call.transcript
    if verb.tag == "Say":
        heard.says(verb.text or "")
    elif verb.tag == "Play":
        heard.plays(verb.text or "")
    elif verb.tag == "Pause":
        # TwiML gives the seconds in `length`; didML the milliseconds as the text.
        milliseconds = (verb.text or "").strip()
        heard.pauses(
            verb.get("length")
            or (f"{int(milliseconds) / 1000:g}" if milliseconds.isdigit() else "1")
        )
    elif verb.tag == "Gather":
        action = _local_path(call, verb.get("action", ""))
        name = parse_qs(urlsplit(action or "").query).get("question", ["?"])[0]
        prompt = " ".join(say.text or "" for say in verb.iter("Say")) or None
        if action is None:
            target = verb.get("action", "")
            heard.ends(f"answers go to {target} (not simulated)", f"gather for {target}")
            return None
        keys = call.ask(name, prompt)
        if keys:
            return action, {"Digits": keys}
        # Silence: on to the next verb.
    elif verb.tag == "Redirect":
        target = (verb.text or "").strip()
        path = _local_path(call, target)
        if path is None:
            heard.ends(f"redirected to {target} (not simulated)", f"redirect to {target}")
            return None
        return path, {}
    elif verb.tag == "Dial":
        numbers = ", ".join(call.e164(n.text or "") for n in verb.iter("Number"))
        if "," in numbers:
            heard.ends(f"rings {numbers}", f"find me {numbers}")
        else:
            heard.ends(f"transferred to {numbers}", f"transfer to {numbers}")
    elif verb.tag == "Record":
        query = parse_qs(urlsplit(verb.get("action", "")).query)
        box = query.get("recorded", [""])[0]
        heard.ends(f"recording a voicemail (box {box})", f"voicemail {box}")
    elif verb.tag == "Hangup":
        heard.ends("hangs up", "hangup")
    elif isinstance(verb.tag, str):
        heard.note(f"ignores <{verb.tag}>")
    return None


def _local_path(call: SimulatedCall, url: str) -> str | None:
    """The path and query of a URL of this Glue's, or None for anyone else's."""
    for prefix in (call.public_base, call.http.base):
        if url.startswith(prefix + "/"):
            return url[len(prefix) :]
    return url if url.startswith(f"/{call.platform}/") else None


def _without_key(url: str) -> str:
    return re.sub(r"([?&]key=)[^&]*", r"\1***", url)


RUNNERS: dict[str, Callable[[SimulatedCall], None]] = {
    "ifbyphone": run_ifbyphone,
    "voipnow": run_voipnow,
    "didml": run_voice_xml,
    "twiml": run_voice_xml,
}
SECRETS = {
    "ifbyphone": "IFBYPHONE_SECRET",
    "voipnow": "VOIPNOW_SECRET",
    "didml": "DIDML_SECRET",
    "twiml": "TWILIO_AUTH_TOKEN",
}


def _caller_id(platform: str, number: str, region: str) -> str:
    """The caller's number as the platform writes it."""
    e164 = try_e164(number, region)
    if e164 is None:
        return number
    if platform in ("didml", "twiml"):
        return e164
    if platform == "ifbyphone":
        return unformatted(e164)
    parsed = phonenumbers.parse(e164)
    return phonenumbers.national_significant_number(parsed)  # VoipNow: as dialled


def turn_outcomes(platform: str, call_id: str, sent: int) -> list[str | None] | None:
    """The outcome of each of the `sent` turns of the call, in order, from this
    app's database; None when that is not the server's (no such call)."""
    try:
        session = get_session()
        found = session.scalars(
            select(CallEvent.outcome)
            .join(Call, CallEvent.call_id == Call.id)
            .where(
                Call.platform == platform,
                Call.platform_call_id == call_id,
                CallEvent.kind == "turn",
            )
            .order_by(CallEvent.id)
        ).all()
        session.rollback()
    except SQLAlchemyError:
        return None
    # A call id used before (--call-id) has the earlier calls' turns first.
    return list(found[-sent:]) if sent and len(found) >= sent else None


def _seconds(value: float) -> float:
    """A timeout requests takes: above 0 and finite (click's FloatRange lets NaN by)."""
    if not 0 < value <= 3600:  # NaN compares false
        raise click.BadParameter("must be above 0, at most 3600 seconds")
    return value


@call_cli.command("simulate")
@click.argument("flow")
@click.option("--platform", type=click.Choice(PLATFORMS), required=True, help="Who to play.")
@click.option("--from", "number", required=True, metavar="NUMBER", help="The caller's number.")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The running Glue.")
@click.option(
    "--digits",
    metavar="KEYS",
    help="The answers, each ended by #: 1001#2468#. Silence once they run out; "
    "an empty one (1001##) is silence too. Default: typed at keys>.",
)
@click.option("--call-id", help="The platform's id of the call. Default: a new one.")
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    callback=lambda _ctx, _param, value: _seconds(value),
    help="Seconds to wait for each answer.",
)
def simulate_command(
    flow: str,
    platform: str,
    number: str,
    url: str,
    digits: str | None,
    call_id: str | None,
    timeout: float,
) -> None:
    """Call FLOW on a running Glue as PLATFORM would, from a phone in the terminal."""
    config = current_app.config
    if digits is not None and not KEYS.fullmatch(digits):
        raise click.BadParameter("only 0-9, * and #", param_hint="'--digits'")
    for hint, value in (("FLOW", flow), ("--from", number), ("--url", url), ("--call-id", call_id)):
        # Bytes a shell passed that were not UTF-8: neither sent nor printed.
        if value and any(0xD800 <= ord(char) <= 0xDFFF for char in value):
            raise click.BadParameter("not UTF-8 text", param_hint=f"'{hint}'")
    # Every platform's side (SurVo ids, IVR contexts, questions) is in the flow; and
    # a name that is no flow would only hear Glue's hang-up, on any platform.
    loaded = _flow(flow)
    if platform in ("ifbyphone", "voipnow") and not loaded.platform(platform):
        raise click.ClickException(f"flow {flow!r} has no {platform} block")
    base = url.rstrip("/")
    region = config["DEFAULT_REGION"]
    transcript = Transcript(click.echo)
    keypad = Keypad(parse_digits(digits) if digits is not None else None, click.echo)
    call = SimulatedCall(
        platform=platform,
        flow_name=flow,
        flow=loaded,
        caller=_caller_id(platform, number, region),
        call_id=call_id or f"sim-{uuid.uuid4().hex[:12]}",
        http=Http(base, timeout),
        keypad=keypad,
        transcript=transcript,
        secret=config[SECRETS[platform]],
        region=region,
        public_base=config["PUBLIC_URL"].rstrip("/") or base,
    )
    click.echo(f"Calling {flow} on {platform} at {base} from {call.caller} (call {call.call_id})")
    try:
        RUNNERS[platform](call)
    except SimulationError as exc:
        if transcript.path:  # as far as it went
            _print_path(call)
        raise click.ClickException(str(exc)) from None
    _print_path(call)


def _flow(name: str) -> Flow:
    """The flow called name in this app's FLOWS_DIR, or a ClickException naming the flows."""
    registry = current_registry()
    loaded = registry.get(name)
    if loaded is not None:
        return loaded
    if name in registry.problems:
        raise click.ClickException(
            f"flow {name!r} does not load: `flask forms check` lists its problems"
        )
    known = listing("flows are", registry.names(), name)
    raise click.ClickException(f"no flow {name!r} in {registry.directory} ({known})")


def _print_path(call: SimulatedCall) -> None:
    outcomes = turn_outcomes(call.platform, call.call_id, call.sent)
    click.echo(f"path: {call.transcript.summary(outcomes)}")
