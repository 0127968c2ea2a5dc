"""Entry point for gunicorn (`gunicorn wsgi:app`): a broken flow file stops start-up."""

from app import create_app

app = create_app()
