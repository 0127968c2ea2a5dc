"""Helpers shared by tests (imported by tests, never test modules themselves)."""
