"""The floor: a Flask app that answers every request with a fixed IfbyPhone hang-up.

Served by the same gunicorn settings as Glue (bench/gunicorn_bench.conf.py),
it is what Flask + gunicorn + this machine cost before Glue does any work:
`gunicorn -c bench/gunicorn_bench.conf.py bench.floor:app`.
"""

from __future__ import annotations

from flask import Flask, Response

BODY = b"<?xml version='1.0' encoding='utf-8'?>\n<action><app>hangup</app></action>"

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
@app.route("/<path:path>", methods=["GET", "POST", "PUT"])
def hangup(path: str) -> Response:
    """Hang up, whatever was asked."""
    return Response(BODY, content_type="text/xml; charset=utf-8")
