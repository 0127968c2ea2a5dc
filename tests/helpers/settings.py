"""Settings every test app and test server shares: the repository root, the
secrets, the database waits lifted for tests, and the browser."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key",
    "PIN_SECRET": "test-pin-secret",
    "IFBYPHONE_SECRET": "ifbyphone-test-secret",
    "VOIPNOW_SECRET": "voipnow-test-secret",
    "DIDML_SECRET": "didml-test-secret",
    "TWILIO_AUTH_TOKEN": "twilio-test-token",
}


# The database waits of app.db.Bounds, lifted for tests of what Glue does (not of
# how fast it gives up, tests/hardening's business): they must not fail because
# the machine is busy, or because they run 20 sessions in one process, more than
# its pool holds (a gunicorn sync worker serves one request at a time).
GENEROUS_BOUNDS = {
    "DB_POOL_TIMEOUT": 10.0,
    "DB_CONNECT_TIMEOUT": 5.0,
    "DB_STATEMENT_TIMEOUT": 10.0,
    "DB_LOCK_TIMEOUT": 5.0,
    "DB_BUSY_TIMEOUT": 15.0,
}


# Debian's Chromium, driven by Playwright (which downloads no browser here); the
# flags keep it off a network this machine does not have.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
