"""Glue's benchmark harness: `make bench`, `make profile`.

`python -m bench` drives Glue, a floor app (a Flask app with a fixed answer) and
the bound (each step's database work by hand) under gunicorn with wrk, on SQLite
and PostgreSQL, and prints requests/s, latency, CPU per step and the Glue/bound
ratios, then the targets, each PASS or FAIL;
`python -m bench xml` times our TwiML renderer against twilio-python;
`python -m bench profile` runs pyinstrument over in-process verification steps.
Nothing here is imported by the app.
"""
