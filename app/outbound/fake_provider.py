"""A stand-in for DIDforSale's call API, for trying click-to-call on one machine.

`flask call fake-provider` serves the CallTermination endpoint. For each call
asked of it, it answers as DIDforSale does, then plays the call through Glue's
status callback (initiated, ringing, answered, completed), and when the call
has a voice document (a one-time code call) it fetches it and prints what the
phone would say, as the built-in sandbox provider does
(app/outbound/providers/sandbox.py). Development only: it places no call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable

import click
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from app.outbound.providers.sandbox import play

ENDPOINT = "/didforsaleapi/index.php/api/V2/CallTermination/"
_numbers = itertools.count(1)


def make_app(answer_after: float, say: Callable[[str], None]) -> Callable[..., Iterable[bytes]]:
    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        if request.path.rstrip("/") != ENDPOINT.rstrip("/") or request.method != "POST":
            return Response("not found", status=404)
        form = request.form
        if not form.get("apikey") or not form.get("to"):
            return Response('{"status": "error", "message": "missing apikey or to"}', 400)
        sid = f"FAKE{next(_numbers):06d}"
        say(f"call {sid}: ringing {form['to']} (caller id {form.get('from', '-')})")
        threading.Thread(
            target=play, args=(sid, form.to_dict(), answer_after, say), daemon=True
        ).start()
        return Response(f'{{"status": "success", "callSid": "{sid}"}}', mimetype="application/json")

    return app  # type: ignore[no-any-return]


@click.command("fake-provider")
@click.option("--port", type=click.IntRange(1, 65535), default=5099, show_default=True)
@click.option(
    "--answer-after",
    type=click.FloatRange(0, 600),
    default=2.0,
    show_default=True,
    help="Seconds of ringing.",
)
def fake_provider_command(port: int, answer_after: float) -> None:
    """Stand in for DIDforSale on 127.0.0.1:PORT (development only)."""
    url = f"http://127.0.0.1:{port}{ENDPOINT}"
    click.echo(f"Fake DIDforSale at {url}\nRun Glue with GLUE_DIDFORSALE_API_URL={url}")
    run_simple("127.0.0.1", port, make_app(answer_after, click.echo), threaded=True)
