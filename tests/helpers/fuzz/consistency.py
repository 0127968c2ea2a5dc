"""What must hold of the database (and the log) whatever a request or command was."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from app.models import Base
from tests.helpers.fuzz.strategies import SENT_PINS


def problems(engine: Engine) -> set[str]:
    """Integrity, no orphans, sane counters, and no PIN the fuzz sent stored anywhere:
    each thing wrong, as a line."""
    found: set[str] = set()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            check = conn.execute(text("PRAGMA integrity_check")).scalars().all()
            found |= {f"integrity_check: {line}" for line in check if line != "ok"}
            keys = conn.execute(text("PRAGMA foreign_key_check")).all()
            found |= {f"foreign_key_check: {row}" for row in keys}
        orphans = conn.execute(
            text(
                "SELECT e.id, e.kind, e.call_id FROM call_events e "
                "LEFT JOIN calls c ON c.id = e.call_id "
                "WHERE c.id IS NULL AND NOT (e.call_id IS NULL AND e.kind = 'malformed')"
            )
        ).all()
        found |= {f"event without its call: {row}" for row in orphans}
        for table in ("users", "groups", "unknown_claims"):
            negative = conn.execute(
                text(f"SELECT id FROM {table} WHERE failed_attempts < 0 OR lockouts < 0")
            ).all()
            found |= {f"negative lockout counters: {table} {row}" for row in negative}
        ended = conn.execute(
            text("SELECT id FROM calls WHERE (status = 'ended') <> (ended_at IS NOT NULL)")
        ).all()
        found |= {f"ended without ended_at, or the reverse: call {row}" for row in ended}
        for stored in Base.metadata.sorted_tables:
            for row in conn.execute(stored.select()).mappings():
                dumped = json.dumps(dict(row), default=str, ensure_ascii=False)
                if any(pin in dumped for pin in SENT_PINS):
                    found.add(f"a PIN sent is stored in {stored.name}: {dumped[:2000]}")
    return found


def assert_consistent(engine: Engine, known: set[str]) -> None:
    """No problem but those `known` already (then updated): each example answers for
    what it did, not for what an earlier, failing one left behind."""
    now = problems(engine)
    new = now - known
    known |= now
    assert not new, "\n".join(sorted(new))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += logging.Formatter().formatException(record.exc_info)
        self.records.append((record.levelno, message))


@contextmanager
def watched_log() -> Iterator[list[tuple[int, str]]]:
    """Glue's log records meanwhile, as (level, text); none may hold a PIN the fuzz sent."""
    handler = _Collect()
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
    leaked = [text for _, text in handler.records if any(pin in text for pin in SENT_PINS)]
    assert not leaked, f"a PIN sent was logged: {leaked[0][:500]}"
