"""The PostgreSQL server tests use, and emptying a test schema."""

from __future__ import annotations

import os

from sqlalchemy import text

from app.db import make_engine
from app.models import Base

POSTGRES_URL = os.environ.get(
    "GLUE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def truncate(url: str, keep: tuple[str, ...] = ()) -> None:
    """Empty every table of a PostgreSQL test schema but those named in `keep`."""
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name not in keep)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
