"""Blueprints that receive platform requests (one module per platform)."""
