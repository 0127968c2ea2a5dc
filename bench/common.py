"""Settings shared by the bench's parts: paths, secrets, the environment Glue runs in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
LUA_SCRIPT = BENCH_DIR / "lua" / "glue.lua"
GUNICORN_CONF = BENCH_DIR / "gunicorn_bench.conf.py"
VENV_BIN = Path(sys.executable).parent

# Fixed bench secrets: nothing is generated into instance/secrets.json.
SECRETS = {
    "SECRET_KEY": "bench-secret-key",
    "PIN_SECRET": "bench-pin-secret",
    "IFBYPHONE_SECRET": "bench-ifbyphone-key",
    "VOIPNOW_SECRET": "bench-voipnow-key",
    "DIDML_SECRET": "bench-didml-key",
    "TWILIO_AUTH_TOKEN": "bench-twilio-token",
}

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_DATABASES = {"small": "glue_bench", "large": "glue_bench_1m"}

FLOW = "verify_caller"
# Accounts are ACCOUNT_BASE + i for user i (i from 0); the PIN is a function of
# i that the wrk script computes too (bench/lua/glue.lua: pin_of).
ACCOUNT_BASE = 10_000_000
PIN_MULTIPLIER, PIN_OFFSET = 7919, 1234


def pin_of(index: int) -> str:
    return f"{(index * PIN_MULTIPLIER + PIN_OFFSET) % 10000:04d}"


def account_of(index: int) -> str:
    return str(ACCOUNT_BASE + index)


def phone_of(index: int) -> str:
    """A valid, distinct US number per user (312-2xx-xxxx .. 312-9xx-xxxx)."""
    return f"+1312{2_000_000 + index:07d}"


def glue_env(
    database_url: str, workdir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment gunicorn (and an in-process app) runs Glue in."""
    env = {
        **os.environ,
        **{f"GLUE_{key}": value for key, value in SECRETS.items()},
        "GLUE_DATABASE_URL": database_url,
        # The job queue is made when app.outbound.jobs is imported: keep it out of instance/.
        "GLUE_QUEUE_PATH": str(workdir / "jobs.db"),
        # One source address (127.0.0.1) sends every request: its allowance is
        # lifted so the limiter still runs (and costs what it costs) but never refuses.
        # Each request is a new caller, so the per-caller limits stay as configured.
        "GLUE_RATE_LIMIT_PER_SOURCE": "100000000/minute",
        "WEB_CONCURRENCY": "2",
        # gunicorn's control socket (if any) and other runtime files: ours, not ~/.
        "XDG_RUNTIME_DIR": str(workdir),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def apply_env(env: dict[str, str]) -> None:
    """Put the GLUE_* settings of `env` into this process (before `app` is imported)."""
    for key, value in env.items():
        if key.startswith("GLUE_") or key in ("XDG_RUNTIME_DIR",):
            os.environ[key] = value
