"""Answers one platform request: store it, run the flow, render, remember.

Everything a turn writes (the event, the call's state, the verification
attempt and its failure count) commits together or not at all. The call's row
is locked first, so turns of one call run one at a time; the event, with its
unique delivery key, is stored last, so a retried identical delivery fails
there, is undone, and gets the first one's stored reply: it changes nothing.
Whatever goes wrong, the platform gets well-formed XML: the flow's `error`
steps, or a hang-up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote_plus, urlsplit

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.db import begin_write
from app.dialects.base import Cursor, Dialect
from app.flows import engine, progress, turn_store
from app.flows.engine import CallState
from app.flows.fallback import fallback_reply, resume_from_mirror
from app.flows.model import Flow
from app.logs import bind_call
from app.metrics import instruments as metrics
from app.models import utcnow
from app.neutral.outcomes import OUTCOMES
from app.neutral.phones import try_e164
from app.neutral.turn import MAX_COUNTER, MalformedRequest, Turn, capped, read_number
from app.verification import call_link
from app.verification.service import Verifier
from app.verification.types import Claim, Verdict

log = logging.getLogger(__name__)

MASK = "***"
# Outcomes that end a verification (a retry is still under way).
VERIFICATION_ENDS = frozenset({"verified", "failed", "locked", "no_input"})
# Request fields that are credentials, never stored.
CREDENTIAL_FIELDS = frozenset({"key", "apikey"})
# The note of a request logged as not stored because it was shed: its wait (s).
SHED_NOTE = "shed_after_seconds"
# Fields Glue does not read are stored with the event, this many at most: the
# rest are counted in its notes. Every name and value stored is capped too.
MAX_UNREAD_FIELDS = 50


class Kept(NamedTuple):
    """A request as stored: the fields sent, and Glue's own notes on them
    (`dropped`, `error`), apart, so that a field sent under any name is kept."""

    fields: dict[str, str]
    notes: dict[str, Any]


def delivery_key(secret: str, platform: str, flow: str, fields: Mapping[str, str]) -> str:
    """Identical deliveries share a key. Keyed, because the fields hold PINs."""
    canonical = json.dumps([platform, flow, sorted(fields.items())], ensure_ascii=False)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def masked(
    fields: Mapping[str, str],
    flow: Flow | None,
    platform_fields: Collection[str],
    max_length: int,
    answer_fields: Mapping[str, str] | None = None,
    also: Flow | None = None,
) -> Kept:
    """The fields as stored: credentials dropped, secret answers masked, a
    verification call's token masked in any pass-through that brings it
    (`call_link.hide_token`), names and values capped (with a marker saying
    so), and of the fields that are neither the platform's nor an answer to
    the flow's questions, the first MAX_UNREAD_FIELDS (the notes' `dropped`
    counts the rest).

    Without a flow nobody knows which answer is the PIN, so every answer is masked.
    `answer_fields` names the field that carried a question's answer, where that
    is not the question's own name. `also` is a second flow whose secret answers
    are masked too (the call's own, when the request named another).
    """
    carriers = answer_fields or {}
    flows = [f for f in (flow, also) if f is not None]
    asked = {carriers.get(q.name, q.name) for f in flows for q in f.questions}
    secrets = {
        carriers.get(name, name)
        for f in flows
        for name in (f.verify.pin, *(q.name for q in f.questions if q.secret))
    }

    def secret(name: str) -> bool:
        return name in secrets if flows else name not in platform_fields

    stored: dict[str, str] = {}
    unread = dropped = 0
    for name, value in fields.items():
        if name in CREDENTIAL_FIELDS:
            continue
        if name not in platform_fields and name not in asked:
            if unread == MAX_UNREAD_FIELDS:
                dropped += 1
                continue
            unread += 1
        shown = MASK if secret(name) else capped(call_link.hide_token(value), max_length)
        stored[capped(name, max_length)] = shown
    return Kept(stored, {"dropped": dropped} if dropped else {})


def read_answers(flow: Flow, turn: Turn, max_length: int) -> dict[str, str]:
    """The answers a turn carries to the flow's questions (any other field is
    no answer); MalformedRequest if one is longer than a field may be."""
    answers = {q.name: turn.answers[q.name] for q in flow.questions if q.name in turn.answers}
    for name, value in answers.items():
        if len(value) > max_length:
            field = turn.answer_fields.get(name, name)
            raise MalformedRequest(f"field {field[:32]!r} longer than {max_length}")
    return answers


def read_turn(
    dialect: Dialect, values: Mapping[str, str], max_length: int
) -> Turn | MalformedRequest:
    """The request as a turn of a call, or why it is not one (read once per request)."""
    try:
        return dialect.parse(values, max_length)
    except MalformedRequest as exc:
        return exc


def log_not_stored(platform: str, kind: str, flow: str, request_id: str, kept: Kept) -> None:
    """Say what a request held that could not be stored (the database is down or
    slow), so an operator can see what was lost: `kept` is as `masked` made it."""
    log.error(
        "event not stored: platform=%s kind=%s flow=%s request=%s fields=%s notes=%s",
        platform,
        kind,
        json.dumps(flow[:64]),
        request_id,
        json.dumps(kept.fields, ensure_ascii=False, sort_keys=True),
        json.dumps(kept.notes, ensure_ascii=False, sort_keys=True),
    )


class TurnRunner:
    def __init__(
        self,
        connect: Callable[[], Connection],
        verifier: Callable[[Connection], Verifier],
        sessions: Callable[[Connection], Session],
        flows: Callable[[str], Flow | None],
        secret: str,
        request_id: str,
        max_length: int,
        region: str = "US",
        versions: Callable[[str, int], Flow | None] = lambda _name, _number: None,
        started: float | None = None,
    ) -> None:
        self._connect = connect
        self._make_verifier = verifier
        self.sessions = sessions  # a session in charge of the connection's transaction
        self._connection: Connection | None = None
        self._verifier: Verifier | None = None
        self.flows = flows  # a flow's published version, by name
        self.versions = versions  # a flow's version, by name and number
        self.secret = secret
        self.request_id = request_id
        self.max_length = max_length
        self.region = region
        self.started = started  # time.perf_counter() when the request reached its route

    @property
    def connection(self) -> Connection:
        """The request's connection, opened on first use: within `answer`, so a
        database that cannot be reached gets the flow's fallback like any other
        failure of it."""
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = self._make_verifier(self.connection)
        return self._verifier

    def _rollback(self) -> None:
        if self._connection is not None:
            self._connection.rollback()

    def answer(
        self,
        dialect: Dialect,
        flow_name: str,
        values: Mapping[str, str],
        turn: Turn | MalformedRequest,
        url: str = "",
    ) -> bytes:
        """The reply to a platform request for `flow_name`; never raises.

        `turn` is `values` as read by `read_turn`. `url` is where the platform
        sent it, for dialects that name the next request's URL.
        """
        flow = self.flows(flow_name)
        try:
            if flow is None:
                raise MalformedRequest(f"unknown flow {flow_name[:64]!r}")
            if dialect.NEEDS_SETTINGS and not flow.platform(dialect.NAME):
                raise MalformedRequest(f"flow {flow.name!r} has no {dialect.NAME} block")
            if isinstance(turn, MalformedRequest):
                raise turn
            return self._take_turn(dialect, flow, turn, url)
        except MalformedRequest as exc:
            log.warning("%s request is not a turn of a call: %s", dialect.NAME, exc)
            self._rollback()  # a turn found out mid-way (an answer too long)
            return self._keep_malformed(dialect, flow, values, str(exc), url)
        except Exception as exc:
            # The caller still hears the flow's apology; the log keeps the request id.
            log.exception("%s turn failed; answered with the flow's fallback", dialect.NAME)
            reason = "database" if isinstance(exc, SQLAlchemyError) else "error"
            metrics.fallback_served(dialect.NAME, flow.name if flow else "-", reason)
            self._rollback()
            # The call may have begun in another flow, with other secret questions:
            # with the database away nobody knows, so every answer is masked.
            lost = masked(values, None, dialect.PLATFORM_FIELDS, self.max_length)
            log_not_stored(dialect.NAME, "turn", flow_name, self.request_id, lost)
            return fallback_reply(dialect, flow, values, url)

    def _take_turn(self, dialect: Dialect, flow: Flow, turn: Turn, url: str) -> bytes:
        stable = {k: v for k, v in turn.fields.items() if k not in dialect.VOLATILE_FIELDS}
        key = delivery_key(self.secret, turn.platform, flow.name, stable)
        # A conflict on the delivery key is a copy of a stored delivery: it hears
        # the stored reply. Any other conflict (a row deleted meanwhile) gets one
        # more try.
        for _ in range(2):
            try:
                return self._run(dialect, flow, turn, key, url)
            except IntegrityError:
                self._rollback()
                stored = self._stored_reply(key, url)
                self._rollback()
                if stored is not None:
                    log.info("duplicate delivery of call %s answered from store", turn.call_id)
                    return stored
        raise RuntimeError(f"could not store a turn of call {turn.call_id}")

    def _run(self, dialect: Dialect, flow: Flow, turn: Turn, key: str, url: str) -> bytes:
        begin_write(self.connection)
        connection = self.connection
        caller = turn.caller or ""
        call = turn_store.lock_call(
            connection,
            turn.platform,
            turn.call_id,
            try_e164(caller, self.region) or caller[:32] or None,
            flow.name,
            utcnow(),
            flow.version,
        )
        bind_call(call.id)
        # A call goes on in the flow it began in, whichever URL a shared SurVo
        # posts back to; the secret answers of both are masked. And in the
        # version it began on, whatever was published since.
        named = flow
        if call.flow != flow.name:
            flow = self.flows(call.flow) or flow
        if call.flow_version is not None and call.flow_version != flow.version:
            flow = self.versions(call.flow, call.flow_version) or flow
        kept = masked(
            turn.fields,
            flow,
            dialect.PLATFORM_FIELDS,
            self.max_length,
            turn.answer_fields,
            also=named if named is not flow else None,
        )
        answers = read_answers(flow, turn, self.max_length)

        def store(outcome: str, reply: str, call_changes: dict[str, Any] | None = None) -> None:
            # Stored last, in the same transaction: a second copy of this delivery
            # fails here on the delivery key, and everything it did is undone.
            turn_store.store_event(
                connection,
                call_id=call.id,
                platform=turn.platform,
                kind="turn",
                dedupe_key=key,
                request_id=self.request_id,
                payload=kept.fields,
                notes=kept.notes,
                outcome=outcome,
                reply=reply,
                call_changes=call_changes,
                duration_ms=self._elapsed_ms(),
            )

        state = resume_from_mirror(CallState.from_json(call.state), turn.pass_through)
        if _answers_an_earlier_reply(turn, state):
            # A late or replayed request (a second post to an old <Gather>, a
            # stale turn): it changes nothing and hears the current reply again.
            last = turn_store.last_reply(connection, call.id)
            if last is not None:
                store("stale", last)
                connection.commit()
                return _restored(last, url).encode()

        # A verification call Glue placed verifies only the user it was placed for.
        request = (
            call_link.bound(connection, call.action_id, turn.platform)
            if call.action_id is not None
            else call_link.bind(
                connection, self.verifier.hasher, call.id, turn.platform, turn.pass_through
            )
        )
        for_user = request.user_id if request else None
        verdicts: list[tuple[Claim, Verdict]] = []

        def verify(claim: Claim, pin: str) -> Verdict:
            verdict = self.verifier.verify(claim, pin, call.id, turn.caller, for_user)
            verdicts.append((claim, verdict))
            return verdict

        decision = engine.decide(
            flow,
            state,
            answers,
            verify,
            turn.caller,
            one_by_one=dialect.ONE_BY_ONE,
        )
        cursor = Cursor(decision.outcome, decision.index, state.turn, url)
        rendered = dialect.render(decision.steps, flow.platform(dialect.NAME), cursor)
        new_state = decision.after_reply(rendered.consumed)

        now = utcnow()
        changes: dict[str, Any] = {"state": new_state.to_json(), "updated_at": now}
        if decision.outcome in OUTCOMES:
            changes["outcome"] = decision.outcome
        stage = progress.reached(call.reached, flow, answers, turn.caller, bool(verdicts))
        if stage is not None:
            changes["reached"] = stage
        if request is not None and request.action_id != call.action_id:
            changes["action_id"] = request.action_id
        if new_state.ended and call.ended_at is None:
            changes["status"], changes["ended_at"] = "ended", now
        store(decision.outcome, _redacted(rendered.body.decode(), url), changes)
        if request is not None and decision.outcome in VERIFICATION_ENDS:
            # The action changes through a session, which commits the turn.
            with self.sessions(connection) as session:
                call_link.report(session, request, decision.outcome)
                session.commit()
        else:
            connection.commit()
        # Counted once committed (a turn undone, a copy of a delivery, counts
        # nothing), and on the turn that reached the outcome, not those that go on
        # sending its steps.
        if decision.outcome in VERIFICATION_ENDS and decision.outcome != state.outcome:
            metrics.verification_ended(flow.name, decision.outcome)
        for claim, verdict in verdicts:
            if verdict.reason == "locked_now":
                metrics.account_locked(claim.kind)
        return rendered.body

    def _keep_malformed(
        self, dialect: Dialect, flow: Flow | None, values: Mapping[str, str], why: str, url: str
    ) -> bytes:
        """Keep a request that is not a readable turn: nothing a platform sends is lost."""
        reply = fallback_reply(dialect, flow, values, url)
        key = delivery_key(self.secret, dialect.NAME, flow.name if flow else "-", values)
        # Unreadable, so which field holds a PIN is unknown: every answer is masked.
        kept = masked(values, None, dialect.PLATFORM_FIELDS, self.max_length)
        kept.notes["error"] = why
        try:
            begin_write(self.connection)
            turn_store.store_event(
                self.connection,
                call_id=None,
                platform=dialect.NAME,
                kind="malformed",
                dedupe_key=key,
                request_id=self.request_id,
                payload=kept.fields,
                notes=kept.notes,
                outcome="malformed",
                reply=_redacted(reply.decode(), url),
                duration_ms=self._elapsed_ms(),
            )
            self.connection.commit()
        except IntegrityError:  # a retried delivery: answer as the first time
            self._rollback()
            try:
                return self._stored_reply(key, url) or reply
            except Exception:
                log.exception(
                    "could not read the stored reply of a malformed %s request", dialect.NAME
                )
                return reply
            finally:
                self._rollback()  # the read's transaction: SQLite's writers' turn
        except Exception:
            log.exception("could not store a malformed %s request", dialect.NAME)
            self._rollback()
            flow_name = flow.name if flow else "-"
            log_not_stored(dialect.NAME, "malformed", flow_name, self.request_id, kept)
        return reply

    def _elapsed_ms(self) -> int | None:
        if self.started is None:
            return None
        return round((time.perf_counter() - self.started) * 1000)

    def _stored_reply(self, key: str, url: str) -> bytes | None:
        reply = turn_store.stored_reply(self.connection, key)
        return _restored(reply, url).encode() if reply is not None else None


def shed(
    dialect: Dialect,
    flow: Flow | None,
    values: Mapping[str, str],
    *,
    flow_name: str,
    url: str,
    waited: float,
    request_id: str,
    max_length: int,
) -> bytes:
    """The reply to a request that waited too long in front of Glue: the
    flow's fallback at once, without the database, so that the requests
    behind it are reached sooner. What it held is logged, as when the
    database is down, with its wait in the notes (one line: under overload
    every line costs a worker's time)."""
    metrics.turn_shed(dialect.NAME)
    metrics.fallback_served(dialect.NAME, flow.name if flow else "-", "overload")
    lost = masked(values, None, dialect.PLATFORM_FIELDS, max_length)
    lost.notes[SHED_NOTE] = round(waited, 3)
    log_not_stored(dialect.NAME, "turn", flow_name, request_id, lost)
    return fallback_reply(dialect, flow, values, url)


def _answers_an_earlier_reply(turn: Turn, state: CallState) -> bool:
    """True for a request carrying the turn of a reply older than the last one.

    (A larger turn than ours means a reply sent while the database was away.)
    """
    sent = read_number(turn.pass_through.get("turn", ""), MAX_COUNTER)
    return sent is not None and sent < state.turn


def _redacted(reply: str, url: str) -> str:
    """A reply as stored: without the shared secret its callback URLs carry."""
    for secret in parse_qs(urlsplit(url).query).get("key", []):
        if secret:
            reply = reply.replace(quote_plus(secret), MASK).replace(secret, MASK)
    return reply


def _restored(reply: str, url: str) -> str:
    """A stored reply as sent again: with this request's own secret put back."""
    for secret in parse_qs(urlsplit(url).query).get("key", []):
        reply = reply.replace(f"key={MASK}", f"key={quote_plus(secret)}")
    return reply
