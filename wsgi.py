"""Entry point for gunicorn (`gunicorn wsgi:app`): a broken flow file stops start-up."""

import gc

from app import create_app

app = create_app()

# What start-up made (the app, flows, SQLAlchemy's and phonenumbers' tables) lives
# as long as the worker: out of the collector's sight, a full collection no longer
# walks it. One took 86 ms in the bench, a caller waiting through it.
gc.freeze()
