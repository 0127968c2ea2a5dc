"""A host application's webhook receiver on a real local HTTP server (for tests).

It checks every request's `Glue-Signature` twice: with the snippet published in
docs/webhooks.md (read from the page, so the page's code is what is tested),
and with an implementation of its own written from the format alone. It
processes each `Glue-Event-Id` once, as the page tells receivers to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskCliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.helpers.settings import PROJECT_ROOT

PATH = "/hooks/glue"
HEADER = re.compile(r"t=(\d+)((?:,v1=[0-9a-f]{64})+)")


def documented_verify() -> Callable[..., bool]:
    """The `verify` function of docs/webhooks.md, run as a reader would paste it."""
    page = (PROJECT_ROOT / "docs" / "webhooks.md").read_text()
    [code] = [
        block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "def verify" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def signed_by(body: bytes, header: str, secret: str, now: float | None = None) -> bool:
    """The check written from the format alone: one t, then one v1 or more, any
    of them the HMAC-SHA256 of `t.body` keyed with the secret, at most 300 s old."""
    match = HEADER.fullmatch(header)
    if match is None:
        return False
    timestamp, given = int(match.group(1)), match.group(2).split(",v1=")[1:]
    if abs((time.time() if now is None else now) - timestamp) > 300:
        return False
    mac = hmac.new(secret.encode(), match.group(1).encode() + b"." + body, hashlib.sha256)
    return any(hmac.compare_digest(mac.hexdigest(), one) for one in given)


@dataclass
class Delivery:
    """One request the receiver got, as it got it."""

    body: bytes
    headers: dict[str, str]
    valid: bool  # by the documented snippet
    valid_by_own_check: bool  # by signed_by

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    server: HTTPServer
    path: str = PATH
    secret: str = ""
    # What to answer next, in order: a status code, or "slow" (answer after
    # `slow_seconds`, later than Glue waits); then 200.
    script: list[int | str] = field(default_factory=list)
    slow_seconds: float = 1.0
    deliveries: list[Delivery] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # processed, once per id
    duplicates: list[str] = field(default_factory=list)  # event ids received again

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def listen(self) -> Receiver:
        self.server.expect_request(self.path, method="POST").respond_with_handler(self._handle)
        return self

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        header = request.headers.get("Glue-Signature", "")
        valid = documented_verify()(body, header, self.secret)
        own = signed_by(body, header, self.secret)
        self.deliveries.append(Delivery(body, dict(request.headers), valid, own))
        if not valid:
            return Response("bad signature", status=400)
        answer = self.script.pop(0) if self.script else 200
        if answer == "slow":
            time.sleep(self.slow_seconds)
            answer = 200
        answer = int(answer)
        if answer >= 300:
            return Response(f"receiver says {answer}", status=answer)
        event = json.loads(body)
        if event["id"] in {seen["id"] for seen in self.events}:
            self.duplicates.append(event["id"])
        else:
            self.events.append(event)
        return Response(json.dumps({"received": event["id"]}), status=200)

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


def set_webhook(runner: FlaskCliRunner, token: str, url: str) -> str:
    """`flask api-tokens webhook TOKEN URL`; the signing secret it prints."""
    result = runner.invoke(args=["api-tokens", "webhook", token, url])
    assert result.exit_code == 0, result.output
    [secret] = re.findall(r"^signing secret: (whsec_\S+)$", result.output, re.M)
    return secret
