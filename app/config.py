"""Configuration: defaults in code, overrides from GLUE_* environment variables.

This is the only module that reads the environment. Secrets are taken verbatim
from it (never JSON-parsed like the other values). Secrets that are not set in
the environment get a development default generated once into the instance
folder (never into the repository), so a fresh checkout works and restarts keep
the same PIN hashes valid.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)

# Secrets: generated into instance/secrets.json when not given by the environment.
SECRET_KEYS = (
    "SECRET_KEY",  # Flask sessions
    "PIN_SECRET",  # HMAC key for PIN hashes: losing it invalidates every PIN
    "IFBYPHONE_SECRET",  # shared secret in the URL pasted into IfbyPhone
    "VOIPNOW_SECRET",
    "DIDML_SECRET",
    "TWILIO_AUTH_TOKEN",
)
# Call provider credentials and account ids, and Twilio's optional signing
# secrets: read verbatim from the environment like the secrets, but never
# generated (no provider accepts a made-up key): empty means not configured.
CREDENTIAL_KEYS = (
    "TWILIO_AUTH_TOKEN_SECONDARY",  # the other auth token while one is rotated
    "TWILIO_WEBHOOK_SIGNING_KEY",  # secret of a webhook shared key (HMAC_SHA256)
    "IFBYPHONE_API_KEY",
    "IFBYPHONE_ACCESS_KEY",
    "IFBYPHONE_SECRET_ACCESS_KEY",
    "IFBYPHONE_ACCOUNT",
    "IFBYPHONE_PASSWORD",
    "DIALOGTECH_ACCESS_KEY",
    "DIALOGTECH_SECRET_ACCESS_KEY",
    "DIDFORSALE_API_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_KEY_SID",
    "TWILIO_API_KEY_SECRET",
    "VOIPTECH_USER",
    "VOIPTECH_PASSWORD",
    "VOIPTECH_ORG",
    "VOIPTECH_IDENT",
    "METRICS_TOKEN",  # the Bearer token /metrics asks for
)
# Settings renamed, whose old variables are still read (with a warning): new -> old.
RENAMED = {"FLOWS_DIR": "FORMS_DIR", "FLOWS_RELOAD_SECONDS": "FORMS_RELOAD_SECONDS"}

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "",  # empty: SQLite file in the instance folder
    "FLOWS_DIR": str(PROJECT_ROOT / "survo_forms"),
    # Seconds between checks of a flow file for edits (0: every request).
    "FLOWS_RELOAD_SECONDS": 1.0,
    # Seconds between each process's looks for a newly published flow version
    # (one small query; none per request in between).
    "FLOWS_POLL_SECONDS": 1.0,
    # Development: a flow file edited since its published version is published
    # when seen (`make run` turns it on). Off: `flask forms publish` does it.
    "FLOWS_AUTO_PUBLISH": False,
    # PIN policy (app/directory/pins.py): the shipped flows' PIN questions take
    # 4 to 8 digits, and `flask forms check` reports a flow that takes fewer.
    "PIN_MIN_LENGTH": 4,
    "PIN_MAX_LENGTH": 8,
    "LOCKOUT_THRESHOLD": 5,  # failures before an account locks
    "LOCKOUT_BASE_SECONDS": 900,  # first lockout; doubles with each further one
    "LOCKOUT_MAX_SECONDS": 86400,
    # Region used to read phone numbers written without a country code.
    "DEFAULT_REGION": "US",
    # Public base URL (https://glue.example.com) when behind a proxy: callback
    # URLs and Twilio signatures use it. Empty: the URL the request came to.
    "PUBLIC_URL": "",
    # Twilio signatures: the second auth token accepted while the account's is
    # rotated, and the secret of the webhook shared key (empty: not accepted).
    "TWILIO_AUTH_TOKEN_SECONDARY": "",
    "TWILIO_WEBHOOK_SIGNING_KEY": "",
    # Largest request body a platform may send (bytes).
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Longest value accepted for any single request field.
    "MAX_FIELD_LENGTH": 256,
    # Rate limits on PIN routes (limits' notation: "20/minute;120/hour"), per
    # caller number and per source address (a platform sends every call from a
    # few addresses: keep that one high). Shared through Redis when configured.
    "RATE_LIMIT_ENABLED": True,
    "RATE_LIMIT_PER_CALLER": "20/minute;120/hour",
    "RATE_LIMIT_PER_SOURCE": "6000/minute",
    "RATE_LIMIT_STORAGE_URL": "",  # empty: GLUE_REDIS_URL, else each process's memory
    # Limits on the calls Glue places (same notation; empty: none), counted where
    # the rate limits above are: every call placed for a user, every call an API
    # token places, and the calls that read a user a code.
    "CALL_LIMIT_PER_USER": "10/minute;200/day",
    "CALL_LIMIT_PER_TOKEN": "60/minute;5000/day",
    "CODE_CALL_LIMIT_PER_USER": "3/10 minutes;10/day",
    # Proxies in front of Glue whose X-Forwarded-For is trusted (0: none).
    "TRUSTED_PROXIES": 0,
    # Seconds a platform request may have waited in front of Glue (a proxy's
    # queue, the listen backlog) and still get its turn; one that waited longer
    # hears the flow's fallback at once (app/web/queue_wait.py). Platforms wait
    # about 5 s: this leaves the turn and the network 2. 0: no shedding at all.
    "QUEUE_BUDGET": 3.0,
    # Seconds of wait past which a turn is shed too while the queue stands
    # (every turn waited longer for 2 s on end: sustained overload, not a burst
    # or a stall), so that the callers served wait about this long. 0: the
    # budget only.
    "QUEUE_TARGET": 0.25,
    # Read a request's arrival from the trusted proxies' X-Request-Start: only
    # when they overwrite it with their own stamp and their clocks are Glue's
    # (NTP). A clock behind by the target would have every call shed.
    "TRUST_REQUEST_START": False,
    "DB_POOL_SIZE": 5,
    # Seconds a request waits on the database before the caller hears the flow's
    # fallback (app.db.Bounds): a free pooled connection, a new connection, a
    # statement, a lock (these three: 0 for no limit); SQLite: another writer.
    "DB_POOL_TIMEOUT": 0.25,
    "DB_CONNECT_TIMEOUT": 0.5,
    "DB_STATEMENT_TIMEOUT": 0.5,
    "DB_LOCK_TIMEOUT": 0.4,
    "DB_BUSY_TIMEOUT": 0.6,
    # Who may read /metrics: a `Authorization: Bearer` token (GLUE_METRICS_TOKEN,
    # a credential: never generated), or a source address in this comma list of
    # addresses and networks (10.0.0.0/8, ::1). Neither: nobody (403).
    "METRICS_TOKEN": "",
    "METRICS_ALLOW": "",
    "LOG_LEVEL": "INFO",
    # text: one readable line per event; json: one JSON object per line (for collectors).
    "LOG_FORMAT": "text",
    # The IANA time zone the admin pages show times in (Europe/Paris), where an
    # admin has chosen none on their settings page.
    "TIME_ZONE": "UTC",
    # `flask retention purge` deletes call records older than this many days.
    "RETENTION_DAYS": 90,
    # Outbound calls (app/outbound/providers): which provider places them.
    # ifbyphone, dialogtech, didforsale, voiptech, twilio; or sandbox, which rings
    # nobody: never the default here, `make run` sets it when none is chosen.
    "CALL_PROVIDER": "didforsale",
    "PROVIDER_CONNECT_TIMEOUT": 5.0,  # seconds; nothing is placed before a connection
    # Seconds: IfbyPhone, DialogTech and VoIPtech answer only once the first leg
    # answered or rang out.
    "PROVIDER_READ_TIMEOUT": 60.0,
    "PROVIDER_CALLER_ID": "",  # E.164 caller ID for calls that name none
    "IFBYPHONE_API_URL": "https://secure.ifbyphone.com/click_to_xyz.php",
    # IfbyPhone credentials: the key, or the access key pair, or the older account.
    "IFBYPHONE_API_KEY": "",
    "IFBYPHONE_ACCESS_KEY": "",
    "IFBYPHONE_SECRET_ACCESS_KEY": "",
    "IFBYPHONE_ACCOUNT": "",
    "IFBYPHONE_PASSWORD": "",
    "DIALOGTECH_API_URL": "https://secure.dialogtech.com/ibp_api.php",
    "DIALOGTECH_ACCESS_KEY": "",
    "DIALOGTECH_SECRET_ACCESS_KEY": "",
    "DIDFORSALE_API_URL": (
        "https://api.didforsale.com/didforsaleapi/index.php/api/V2/CallTermination/"
    ),
    "DIDFORSALE_API_KEY": "",
    # Not documented, so settable: how numbers (digits: 13125551212, e164,
    # unformatted) and fields (form or json) are sent, and the events called back.
    "DIDFORSALE_NUMBER_FORMAT": "digits",
    "DIDFORSALE_BODY": "form",
    "DIDFORSALE_STATUS_EVENTS": "initiated ringing answered completed",
    # Twilio: the account, and optionally an API key (SK...) used instead of the
    # auth token (GLUE_TWILIO_AUTH_TOKEN, which signs the status callbacks);
    # the API's base URL, another only for tests.
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_API_KEY_SID": "",
    "TWILIO_API_KEY_SECRET": "",
    "TWILIO_API_URL": "https://api.twilio.com",
    # Sandbox: seconds its pretend phone rings before answering.
    "SANDBOX_ANSWER_SECONDS": 2.0,
    "VOIPTECH_URL": "",  # https://<your PBX host>/API/dialup.php
    "VOIPTECH_USER": "",
    "VOIPTECH_PASSWORD": "",
    "VOIPTECH_ORG": "",
    "VOIPTECH_NUMBER_FORMAT": "digits",  # as for DIDforSale
    # VoIPtech future calls: the zone `Date` is written in, `ident` (empty: the
    # call action's id), retries until answered and seconds between them.
    "VOIPTECH_TIMEZONE": "UTC",
    "VOIPTECH_IDENT": "",
    "VOIPTECH_MAX_RETRY": 2,
    "VOIPTECH_RETRY_SECONDS": 300,
    # Click-to-call: the Originator every user may call (E.164) and its name.
    "ORIGINATOR_NUMBER": "",
    "ORIGINATOR_NAME": "Originator",
    # Destination policy (app/outbound/destinations.py), checked before any call
    # is sent: the countries called (region codes; empty: DEFAULT_REGION; `*`:
    # any), the number types refused (phonenumbers' names), and E.164 prefixes
    # always called or never called (a deny prefix wins over everything).
    "CALL_ALLOWED_COUNTRIES": "",
    "CALL_REFUSED_TYPES": "premium_rate shared_cost personal_number uan pager voicemail unknown",
    "CALL_ALLOW_PREFIXES": "",
    "CALL_DENY_PREFIXES": "",
    # A provider's clear refusal (nothing placed) is tried this many times in
    # all, waiting CALL_RETRY_SECONDS, then twice that, ...
    "CALL_MAX_ATTEMPTS": 3,
    "CALL_RETRY_SECONDS": 30,
    # Webhooks (app/outbound/webhooks.py): attempts in all per event, the wait
    # after the first (three times longer after each), seconds a receiver has
    # to answer, and whether http:// URLs are allowed (local receivers only).
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_RETRY_SECONDS": 30,
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_ALLOW_HTTP": False,
    # How far ahead the API may schedule a call (`at`).
    "CALL_SCHEDULE_MAX_DAYS": 30,
    # The flow an IfbyPhone click-to-SurVo verification call runs.
    "VERIFY_FLOW": "verify_caller",
    # Provider of calls that read a one-time code (it needs a voice document URL).
    "VERIFY_PROVIDER": "didforsale",
    # What a phone-verification call says; {code} is read digit by digit.
    "VOICE_CODE_MESSAGE": "Your Glue code is {code}.",
}


def load(app: Flask, test_config: dict[str, Any] | None = None) -> None:
    """Fill app.config from defaults, then GLUE_* variables, then test_config."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("GLUE")
    _renamed(app)
    _raw_secrets(app)
    if test_config:
        app.config.update(test_config)
    _coerce_types(app)
    _fill_secrets(app)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'glue.db'}"


def _renamed(app: Flask) -> None:
    # The new variable wins when both are set; the old key never stays in config.
    for new, old in RENAMED.items():
        if old not in app.config:
            continue
        value = app.config.pop(old)
        if f"GLUE_{new}" not in os.environ:
            app.config[new] = value
        log.warning("GLUE_%s is deprecated: set GLUE_%s instead", old, new)


def _raw_secrets(app: Flask) -> None:
    # from_prefixed_env parses values as JSON, which would turn a secret of 1e3
    # into "1000.0", 1.50 into "1.5" and null into "no secret" (so a new one
    # would be generated). A secret is whatever string the environment holds.
    for key in SECRET_KEYS:
        raw = os.environ.get(f"GLUE_{key}")
        if raw is None:
            continue
        app.config[key] = raw or None  # empty counts as unset
    for key in CREDENTIAL_KEYS:
        raw = os.environ.get(f"GLUE_{key}")
        if raw is not None:
            app.config[key] = raw  # empty: not configured, nothing generated


def _coerce_types(app: Flask) -> None:
    # from_prefixed_env parses values as JSON, so GLUE_LOCKOUT_THRESHOLD=5 arrives
    # as an int and GLUE_DB_POOL_TIMEOUT=1 as an int too: bring each to its type.
    # Secrets from the environment are already raw strings (_raw_secrets); this
    # only covers ones passed in test_config.
    for key, default in DEFAULTS.items():
        value = app.config.get(key)
        if value is None or isinstance(default, bool):
            continue
        if isinstance(default, int | float | str) and not isinstance(value, type(default)):
            app.config[key] = type(default)(value)
    for key in SECRET_KEYS:
        if app.config.get(key) is not None:
            app.config[key] = str(app.config[key])


def secrets_file(app: Flask) -> Path:
    """Where secrets not set in the environment are generated and kept."""
    return Path(app.instance_path) / "secrets.json"


def secret_is_in_file(app: Flask, key: str) -> bool:
    """Whether the app's secret `key` is the one kept in secrets_file (it was not set
    in the environment), so that a command can read it from there without printing it."""
    path = secrets_file(app)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and stored.get(key) == app.config.get(key)


def _fill_secrets(app: Flask) -> None:
    missing = [key for key in SECRET_KEYS if not app.config.get(key)]
    if not missing:
        return
    path = secrets_file(app)
    stored, generated = _read_or_create_secrets(path)
    for key in missing:
        app.config[key] = stored[key]
    # Only the ones this app uses and this process wrote: other workers that
    # read the file afterwards stay quiet. Names only, never values.
    new = [key for key in missing if key in generated]
    if new and not app.config.get("TESTING"):
        log.warning(
            "secrets %s were generated into the instance folder (%s); with several "
            "hosts they must be set in the environment (GLUE_<NAME>), the same on each",
            ", ".join(new),
            path.parent,
        )


def _read_or_create_secrets(path: Path) -> tuple[dict[str, str], list[str]]:
    """The stored secrets, completed if needed, and the keys this call generated."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if all(key in stored for key in SECRET_KEYS):
        return stored, []
    generated = [key for key in SECRET_KEYS if not stored.get(key)]
    fresh = {key: stored.get(key) or secrets.token_urlsafe(32) for key in SECRET_KEYS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(fresh, handle, indent=2)
    try:
        if stored:
            os.replace(tmp, path)  # a newer version added keys: keep the old ones
        else:
            # link() fails if the file exists, so of two processes starting at
            # once only one writes the secrets and the other reads them.
            os.link(tmp, path)
    except FileExistsError:
        return _read_or_create_secrets(path)
    finally:
        tmp.unlink(missing_ok=True)
    return fresh, generated


def use_metrics_dir() -> Path:
    """The folder where this host's processes (web workers, job worker) keep their
    counts, for /metrics to add them up (GLUE_METRICS_DIR; default instance/metrics);
    created, and named to prometheus_client (PROMETHEUS_MULTIPROC_DIR), which reads
    it from the environment when a process first counts. Read before any app
    exists, so straight from the environment."""
    folder = Path(os.environ.get("GLUE_METRICS_DIR") or PROJECT_ROOT / "instance" / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


@dataclass(frozen=True)
class QueueSettings:
    redis_url: str  # Redis for the job queue; empty: a SQLite file
    path: str


def queue_settings() -> QueueSettings:
    """Where the job queue lives. Read at import by the worker, before any app
    exists, so straight from the environment (GLUE_REDIS_URL, GLUE_QUEUE_PATH)."""
    return QueueSettings(
        redis_url=os.environ.get("GLUE_REDIS_URL", ""),
        path=os.environ.get("GLUE_QUEUE_PATH", str(PROJECT_ROOT / "instance" / "jobs.db")),
    )
