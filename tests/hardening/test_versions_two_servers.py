"""A publish reaches every host: two gunicorn servers (two workers each) on one
PostgreSQL. A call alternating between them stays on the version it started on
while a new one is published mid-call; new calls get the new one on both within
2 seconds; a broken source is never published."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flows import versions
from app.models import Call, FlowVersion
from tests.helpers.directory import add_user
from tests.helpers.ifbyphone import answers, follow, message, send
from tests.helpers.servers import Balancer, Server
from tests.helpers.settings import PROJECT_ROOT

SOURCE = (PROJECT_ROOT / "survo_forms" / "verify_caller.yaml").read_text()
WELCOME = SOURCE.replace('say: "Thank you, {name}."', 'say: "Welcome, {name}."')
WITHIN = 2.0  # seconds for every host to start new calls on a new version


def call_version(db: Session, call_id: str) -> int | None:
    db.commit()
    return db.scalars(select(Call.flow_version).where(Call.platform_call_id == call_id)).one()


def test_a_publish_mid_call(two_servers: tuple[Server, Server], db: Session) -> None:
    a, b = (Balancer((server.base,)) for server in two_servers)
    add_user(db, "1001", "Ada Lovelace", "2468", "+13125550101")
    db.commit()
    # Both hosts serve v1 (the first request publishes the files: auto-publish).
    for host in (a, b):
        assert message(send(host, answers(f"warm-{id(host)}", "1001", "2468"))) == (  # type: ignore[arg-type]
            "Thank you, Ada Lovelace."
        )
    retry = send(a, answers("mid-call", "1001", "1111"))  # type: ignore[arg-type]
    assert call_version(db, "mid-call") == 1

    # A broken source is refused, and nothing is published.
    with pytest.raises(versions.PublishError):
        versions.publish(db, "verify_caller", WELCOME.replace("tries: 3", "tries: 0"), by="cli")
    db.rollback()
    row = versions.publish(db, "verify_caller", WELCOME, by="cli")
    db.commit()
    published = time.monotonic()
    assert row is not None and row.number == 2

    # The call goes on, alternating hosts, on v1.
    follow(b, "mid-call", retry)  # type: ignore[arg-type]
    last = send(a, answers("mid-call", "1001", "2468"))  # type: ignore[arg-type]
    assert message(last) == "Thank you, Ada Lovelace."
    assert call_version(db, "mid-call") == 1

    # New calls: v2 on both hosts within WITHIN seconds.
    seen: dict[str, float] = {}
    attempt = 0
    while len(seen) < 2 and time.monotonic() - published < WITHIN + 1:
        for name, host in (("a", a), ("b", b)):
            if name in seen:
                continue
            attempt += 1
            heard = message(send(host, answers(f"new-{attempt}", "1001", "2468")))  # type: ignore[arg-type]
            if heard == "Welcome, Ada Lovelace.":
                seen[name] = time.monotonic() - published
                assert call_version(db, f"new-{attempt}") == 2
        time.sleep(0.05)
    print(f"both hosts served v2 after {max(seen.values(), default=-1):.2f} s ({seen})")
    assert set(seen) == {"a", "b"} and max(seen.values()) <= WITHIN
    db.commit()
    assert db.scalars(
        select(FlowVersion.number).where(FlowVersion.flow == "verify_caller")
    ).all() == [1, 2]
    # The servers outlive this test: leave them the shipped text again.
    versions.publish(db, "verify_caller", SOURCE, by="cli", origin="rollback")
    db.commit()
