"""The development fake provider, end to end over real HTTP both ways: Glue asks
it for a call, and it plays the call back through Glue's status callback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from app.auth import tokens
from app.db import get_session
from app.outbound import fake_provider
from tests.helpers.live_server import serve


def serve_fake(app: object) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def glue_and_fake(
    sqlite_template: Path, tmp_path: Path, flows_dir: Path
) -> Iterator[tuple[str, str, list[str]]]:
    said: list[str] = []
    fake, fake_base = serve_fake(fake_provider.make_app(0.2, said.append))
    provider = {
        "DIDFORSALE_API_URL": fake_base + fake_provider.ENDPOINT,
        "DIDFORSALE_API_KEY": "demo",
        "ORIGINATOR_NUMBER": "+13125550199",  # the caller id of verification calls
    }
    try:
        with serve(sqlite_template, tmp_path, flows_dir, **provider) as (glue_base, app):
            app.config["PUBLIC_URL"] = glue_base
            with app.app_context():
                token = tokens.create(get_session(), "demo")
                get_session().commit()
            yield glue_base, token, said
    finally:
        fake.shutdown()


def wait_for(url: str, token: str, done: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        view: dict[str, object] = requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        if view["status"] == done:
            return view
        time.sleep(0.1)
    raise AssertionError(f"{url} never reached {done}: {view}")


def test_a_call_goes_through_the_fake_provider_to_completed(
    glue_and_fake: tuple[str, str, list[str]],
) -> None:
    base, token, said = glue_and_fake
    started = requests.post(
        f"{base}/api/v1/calls",
        json={"user": "1001", "target": {"kind": "group", "value": "500"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    view = wait_for(f"{base}/api/v1/calls/{started['id']}", token, "completed")
    statuses = [s["status"] for s in view["statuses"]]  # type: ignore[union-attr,index]
    assert statuses == ["initiated", "ringing", "answered", "completed"]
    assert any("ringing 13125550101" in line for line in said)


def test_a_code_call_is_read_out_by_the_fake_phone(
    glue_and_fake: tuple[str, str, list[str]],
) -> None:
    base, token, said = glue_and_fake
    started = requests.post(
        f"{base}/api/v1/users/1001/verifications",
        json={"method": "code"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    wait_for(f"{base}/api/v1/calls/{started['call']['id']}", token, "completed")
    [spoken, *_] = [line for line in said if line.startswith("the phone says")]
    code = "".join(ch for ch in spoken if ch.isdigit())
    checked = requests.post(
        f"{base}/api/v1/users/1001/verifications/{started['id']}",
        json={"code": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert checked.json() == {"outcome": "confirmed"}
