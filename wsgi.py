"""Entry point for gunicorn (`gunicorn wsgi:app`): a broken flow file stops start-up."""

import gc

from sqlalchemy.orm import configure_mappers

from app import create_app

app = create_app()

# What start-up made (the app, its flows, the ORM's mappers, configured here
# rather than on the first request) lives as long as the worker: out of the
# collector's sight, a full collection never walks it while a caller waits.
configure_mappers()
gc.collect()
gc.freeze()
