"""gunicorn settings, read from the working folder (`gunicorn --bind HOST:PORT wsgi:app`).

Bind stays on the command line (Makefile, Procfile). Nothing here reads a secret.
"""

import os

from gunicorn import glogging

from app.logs import ServerMessageFilter, one_line
from app.metrics import files as metrics_files

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# The access log names the path without its query string (%(U)s, not %(r)s):
# the IfbyPhone URL carries `?key=SECRET`, and a SurVo posting by GET sends its
# answers (PINs included) in the query. Referer and user agent are left out too.
# The request id ties each line to the app's own log lines.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'

# Load balancers ask /healthz and /readyz every few seconds: a successful answer
# is left out of the access log (it would drown the calls); a failing one stays.
PROBES = frozenset({"/healthz", "/readyz"})


class OneLineAtoms(glogging.SafeAtoms):
    """An access line's fields with their control characters escaped: the path
    is written decoded, so a %0a in a URL would otherwise end the line there."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        return one_line(value) if isinstance(value, str) else value


class GlueLogger(glogging.Logger):
    """Access lines without successful probes, one line each; gunicorn's own
    messages (a refused request line, quoted whole) one line each, and without
    the query strings and credentials they quote."""

    atoms_wrapper_class = OneLineAtoms

    def __init__(self, cfg):
        super().__init__(cfg)
        # The logger is process-wide and this class may be made more than once.
        if not any(isinstance(f, ServerMessageFilter) for f in self.error_log.filters):
            self.error_log.addFilter(ServerMessageFilter())

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") in PROBES and str(resp.status).startswith("2"):
            return
        super().access(resp, req, environ, request_time)


logger_class = GlueLogger

# No admin control socket: several Glue servers on one host must not take it
# over from each other, and nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Counts of an earlier run (processes no longer running) are dropped; the
    workers, forked from here, count into the host's metrics folder."""
    cleared = metrics_files.clear_stopped()
    if cleared:
        server.log.info("metrics: %d files of stopped processes cleared", len(cleared))
