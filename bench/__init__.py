"""Glue's benchmark harness: `make bench`, `make profile`.

`python -m bench` drives Glue and a floor app (a Flask app with a fixed answer)
under gunicorn with wrk, on SQLite and PostgreSQL, and prints a table of
requests/s, p50, p99 and the Glue/floor ratios against the targets;
`python -m bench xml` times our TwiML renderer against twilio-python;
`python -m bench profile` runs pyinstrument over in-process verification steps.
Nothing here is imported by the app.
"""
