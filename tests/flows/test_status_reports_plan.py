"""The read of a call's stored status reports (each DIDforSale `completed` makes
it) looks its events up by key on SQLite, however many events the database
holds: with an OR of the call and its action, SQLite's planner, once ANALYZE
has run, scanned every event, and each status callback slowed as they piled up."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from app.flows.statuses import STORED_REPORTS
from app.models import Base


def test_the_reports_of_a_call_are_found_by_key_not_by_a_scan(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    Base.metadata.create_all(engine)
    rows = [{"i": i} for i in range(1, 2001)]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO calls (id, platform, platform_call_id, flow, state, status,"
                " started_at, updated_at) VALUES (:i, 'didml', 'c' || :i, '-', '{}', 'ended',"
                " '2026-12-07', '2026-12-07')"
            ),
            rows,
        )
        connection.execute(
            text(
                "INSERT INTO call_events (call_id, platform, kind, dedupe_key, payload, outcome,"
                " received_at) VALUES (:i, 'didml', 'status', 'k' || :i, '{}', 'completed',"
                " '2026-12-07')"
            ),
            rows,
        )
        connection.exec_driver_sql("ANALYZE")
    sql = str(STORED_REPORTS.statement.compile(engine))
    with engine.connect() as connection:
        for action in (None, 7):
            plan = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}", ("status", 5, action)
            ).all()
            steps = [row[3] for row in plan]
            assert not any(step.startswith("SCAN") for step in steps), steps
            found = STORED_REPORTS.rows(connection, {"call_row": 5, "action": action})
            assert [(call, outcome) for call, outcome, _ in found] == [(5, "completed")]
    engine.dispose()
