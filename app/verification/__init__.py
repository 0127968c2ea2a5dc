"""Verification: identity checks against the directory, with lockout."""
