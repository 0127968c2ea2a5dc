"""Shared-secret authentication for platform routes: `?key=` or HTTP Basic."""

from __future__ import annotations

import hmac

from flask import Response, request


def presented_secret() -> str:
    """The secret a request carries: the `key` query field, else the Basic password."""
    if "key" in request.args:
        return request.args.get("key", "")
    if request.authorization and request.authorization.password:
        return request.authorization.password
    return ""


def has_secret(expected: str) -> bool:
    """Constant-time check; an unset secret never matches."""
    given = presented_secret()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def has_field_secret(field: str, expected: str) -> bool:
    """Constant-time check of a secret a platform sends back as a request field
    (DIDforSale's `apikey`, from the call's `secretKey`); an unset secret never matches."""
    given = request.values.get(field, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def forbidden() -> Response:
    """403 with no XML: an unauthenticated caller learns nothing about the flow."""
    return Response("Forbidden\n", status=403, mimetype="text/plain")
