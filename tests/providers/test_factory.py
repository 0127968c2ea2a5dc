"""make_provider: one client per name, set up from the flat GLUE_* config keys;
the config keys themselves: credentials read verbatim, never generated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from app import config as config_module
from app.outbound.providers import PROVIDER_NAMES, make_provider
from app.outbound.providers.base import Outcome, Provider
from app.outbound.providers.dialogtech import DIALOGTECH_URL, DialogTech
from app.outbound.providers.didforsale import DIDFORSALE_URL, DIDforSale
from app.outbound.providers.ifbyphone import IFBYPHONE_URL, IfbyPhone
from app.outbound.providers.voiptech import VoIPtech
from tests.helpers.providers import call

DEFAULTS = config_module.DEFAULTS


def test_the_default_provider_is_didforsale_with_the_documented_urls() -> None:
    provider = make_provider(DEFAULTS["CALL_PROVIDER"], DEFAULTS)
    assert isinstance(provider, DIDforSale) and isinstance(provider, Provider)
    assert provider.settings.base_url == DIDFORSALE_URL
    assert provider.settings.connect_timeout == 5.0 and provider.settings.read_timeout == 60.0
    assert provider.settings.status_events == ("initiated", "ringing", "answered", "completed")
    assert DEFAULTS["IFBYPHONE_API_URL"] == IFBYPHONE_URL
    assert DEFAULTS["DIALOGTECH_API_URL"] == DIALOGTECH_URL


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ifbyphone", IfbyPhone),
        ("dialogtech", DialogTech),
        ("didforsale", DIDforSale),
        ("voiptech", VoIPtech),
        (" DIDforSale ", DIDforSale),
    ],
)
def test_each_name_makes_its_client(name: str, kind: type) -> None:
    provider = make_provider(name, DEFAULTS)
    assert isinstance(provider, kind)
    assert provider.name in PROVIDER_NAMES


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown call provider 'plivo'"):
        make_provider("plivo", DEFAULTS)


def test_settings_come_from_the_config_keys() -> None:
    config: dict[str, Any] = {
        **DEFAULTS,
        "PROVIDER_CONNECT_TIMEOUT": 2,
        "PROVIDER_READ_TIMEOUT": 45,
        "PROVIDER_CALLER_ID": "+18005551212",
        "IFBYPHONE_API_KEY": " key with spaces ",
        "DIALOGTECH_ACCESS_KEY": "ak",
        "DIALOGTECH_SECRET_ACCESS_KEY": "sak",
        "DIDFORSALE_API_KEY": "dk",
        "DIDML_SECRET": "didml-secret",
        "DIDFORSALE_STATUS_EVENTS": "answered, completed",
        "DIDFORSALE_BODY": "json",
        "VOIPTECH_URL": "https://pbx.example.com/API/dialup.php",
        "VOIPTECH_USER": "u",
        "VOIPTECH_PASSWORD": "p",
        "VOIPTECH_ORG": "o",
        "VOIPTECH_TIMEZONE": "Asia/Jerusalem",
        "VOIPTECH_MAX_RETRY": 4,
    }
    ifbyphone = make_provider("ifbyphone", config)
    assert isinstance(ifbyphone, IfbyPhone)
    assert ifbyphone.settings.key == " key with spaces "  # verbatim
    assert ifbyphone.settings.connect_timeout == 2.0 and ifbyphone.settings.read_timeout == 45.0
    assert ifbyphone.settings.caller_id == "+18005551212"
    dialogtech = make_provider("dialogtech", config)
    assert isinstance(dialogtech, DialogTech)
    assert (dialogtech.settings.access_key, dialogtech.settings.secret_access_key) == ("ak", "sak")
    didforsale = make_provider("didforsale", config)
    assert isinstance(didforsale, DIDforSale)
    assert didforsale.settings.api_key == "dk"
    assert didforsale.settings.callback_secret == "didml-secret"  # what the status hook checks
    assert didforsale.settings.status_events == ("answered", "completed")
    assert didforsale.settings.body == "json"
    voiptech = make_provider("voiptech", config)
    assert isinstance(voiptech, VoIPtech)
    assert voiptech.settings.base_url == "https://pbx.example.com/API/dialup.php"
    assert (voiptech.settings.user, voiptech.settings.password, voiptech.settings.org) == (
        "u",
        "p",
        "o",
    )
    assert voiptech.settings.timezone == "Asia/Jerusalem" and voiptech.settings.max_retry == 4


@pytest.mark.parametrize(
    "changes",
    [
        {"DIDFORSALE_NUMBER_FORMAT": "dotted"},
        {"DIDFORSALE_STATUS_EVENTS": "hung-up"},
        {"DIDFORSALE_API_URL": "ftp://example.com/"},
        {"PROVIDER_CALLER_ID": "555"},
        {"PROVIDER_READ_TIMEOUT": -1},
    ],
)
def test_a_malformed_setting_is_an_error_at_once(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_provider("didforsale", {**DEFAULTS, **changes})


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("didforsale", ["GLUE_DIDFORSALE_API_KEY"]),
        ("dialogtech", ["GLUE_DIALOGTECH_ACCESS_KEY", "GLUE_DIALOGTECH_SECRET_ACCESS_KEY"]),
        ("ifbyphone", ["GLUE_IFBYPHONE_API_KEY"]),
        ("voiptech", ["GLUE_VOIPTECH_URL", "GLUE_VOIPTECH_USER", "GLUE_VOIPTECH_PASSWORD"]),
    ],
)
def test_unset_credentials_refuse_without_sending(
    httpserver: HTTPServer, name: str, names: list[str]
) -> None:
    url = httpserver.url_for("/api")
    config = {
        **DEFAULTS,
        "IFBYPHONE_API_URL": url,
        "DIALOGTECH_API_URL": url,
        "DIDFORSALE_API_URL": url,
    }
    result = make_provider(name, config).place_call(call())
    assert result.outcome is Outcome.REFUSED
    assert result.final and not result.may_retry  # retrying cannot set the credentials
    for setting in names:
        assert setting in result.detail
    assert httpserver.log == []


# The config keys, on a bare Flask app: config.load is all that runs.


def _loaded(tmp_path: Path) -> Flask:
    app = Flask("glue-test", instance_path=str(tmp_path / "instance"))
    config_module.load(app, {"TESTING": True})
    return app


@pytest.fixture
def no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in config_module.CREDENTIAL_KEYS:
        monkeypatch.delenv(f"GLUE_{key}", raising=False)


@pytest.mark.usefixtures("no_env_credentials")
@pytest.mark.parametrize("raw", ["1e3", "1.50", "null", "true", "007", " padded ", '"q"'])
def test_credentials_are_read_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    for key in config_module.CREDENTIAL_KEYS:
        monkeypatch.setenv(f"GLUE_{key}", raw)
    app = _loaded(tmp_path)
    for key in config_module.CREDENTIAL_KEYS:
        assert app.config[key] == raw


@pytest.mark.usefixtures("no_env_credentials")
def test_unset_credentials_stay_empty_and_are_never_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_DIDFORSALE_API_KEY", "")
    app = _loaded(tmp_path)
    for key in config_module.CREDENTIAL_KEYS:
        assert app.config[key] == ""
    stored = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    assert not set(stored) & set(config_module.CREDENTIAL_KEYS)


def test_credentials_are_kept_apart_from_generated_secrets() -> None:
    assert not set(config_module.CREDENTIAL_KEYS) & set(config_module.SECRET_KEYS)
    assert set(config_module.CREDENTIAL_KEYS) <= set(DEFAULTS)


def test_provider_numbers_from_the_environment_get_their_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_PROVIDER_READ_TIMEOUT", "90")
    monkeypatch.setenv("GLUE_VOIPTECH_MAX_RETRY", "3")
    app = _loaded(tmp_path)
    assert app.config["PROVIDER_READ_TIMEOUT"] == 90.0
    assert isinstance(app.config["PROVIDER_READ_TIMEOUT"], float)
    assert app.config["VOIPTECH_MAX_RETRY"] == 3
