"""The PostgreSQL server tests use, emptying a test schema, and a database that is down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

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


@contextmanager
def database_down(app: Flask) -> Iterator[None]:
    """The app's requests meet a database that refuses connections (nothing
    listens on its port): sessions and a turn's connection alike."""
    broken = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    saved = {key: app.extensions[key] for key in ("glue.engine", "glue.sessionmaker")}
    app.extensions["glue.engine"] = broken
    app.extensions["glue.sessionmaker"] = sessionmaker(broken)
    try:
        yield
    finally:
        app.extensions.update(saved)
        broken.dispose()
