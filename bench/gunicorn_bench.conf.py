"""gunicorn settings for the bench: the project's gunicorn.conf.py, access log off.

The access log writes a line per request to stdout; the bench measures the app,
not that I/O. BENCH_ACCESS_LOG=1 keeps it. Glue and the floor both use this file.
"""

import os
import runpy

_project = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "gunicorn.conf.py"))
globals().update({k: v for k, v in _project.items() if not k.startswith("_")})

if os.environ.get("BENCH_ACCESS_LOG") != "1":
    accesslog = None
