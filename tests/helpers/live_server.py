"""The app on a real WSGI server in a thread: for the browser tests and for
whatever must reach Glue over HTTP (a provider calling back, the sandbox)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from tests.helpers.settings import TEST_SECRETS


@contextmanager
def serve(
    sqlite_template: Path, tmp_path: Path, flows_dir: Path, **config: Any
) -> Iterator[tuple[str, Flask]]:
    """The app (migrated SQLite, the demo directory, Ada an admin) at
    http://127.0.0.1:<free port>, with its base URL."""
    database = tmp_path / "glue.db"
    shutil.copy(sqlite_template, database)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{database}",
            "FLOWS_DIR": str(flows_dir),
            **TEST_SECRETS,
            **config,
        },
        instance_path=str(tmp_path / "instance"),
    )
    runner = app.test_cli_runner()
    for args in (["demo", "load"], ["users", "make-admin", "1001"], ["forms", "publish"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["glue.engine"].dispose()
