"""The request body limit (GLUE_MAX_CONTENT_LENGTH) on every route, with a
Content-Length and chunked (no length), answered in the route's own format."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Call
from tests.helpers.fuzz.consistency import assert_consistent
from tests.helpers.fuzz.routes import LIMIT, OWN, ROUTES, Spec, check, send
from tests.helpers.fuzz.world import World
from tests.helpers.settings import TEST_SECRETS

# A path argument that reaches each route's view.
ARGS = {"flow_name": "verify_caller", "name": "verify_caller", "account": "1001"}


def _spec(rule: str, size: int, chunked: bool) -> Spec:
    names = [part.split(":")[-1] for part in rule.replace(">", "<").split("<")[1::2]]
    args = tuple((name, ARGS.get(name, OWN)) for name in names)
    return Spec("POST", args, "right", cookie="admin", pad=size, chunked=chunked)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_every_route_refuses_a_body_over_the_limit(world: World, chunked: bool) -> None:
    for rule in ROUTES:
        spec = _spec(rule, LIMIT, chunked)
        sent = send(world, rule, spec)
        assert sent.oversize
        check(rule, spec, sent)  # the route's format, and 413 (or 403 unauthenticated)
        if ROUTES[rule].auth != "twilio":  # a signature over a body too large is unchecked
            assert sent.response.status_code == 413, rule
    assert_consistent(world.engine, world.known_problems)


@pytest.mark.parametrize("over", [0, 1], ids=["at-the-limit", "one-byte-over"])
def test_a_chunked_body_is_read_whole_or_refused(world: World, over: int) -> None:
    """The field after 64 KiB of others arrives; one byte more and nothing is read."""
    suffix = b"&session_id=whole-1"
    fields = b"&".join(b"f%d=x" % i for i in range(LIMIT // 6))
    body = fields[: LIMIT - len(suffix) + over].rstrip(b"&=f0123456789") + b"=x"
    body += b"&" * (LIMIT - len(suffix) + over - len(body)) + suffix
    assert len(body) == LIMIT + over
    response = world.app.test_client().post(
        "/ifbyphone/verify_caller",
        query_string={"key": TEST_SECRETS["IFBYPHONE_SECRET"]},
        input_stream=io.BytesIO(body),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    with Session(world.engine) as session:
        call = session.scalar(select(Call).where(Call.platform_call_id == "whole-1"))
    if over:
        assert response.status_code == 413
        assert call is None
    else:
        assert response.status_code == 200
        assert call is not None, "the field at the end of the body was lost"
