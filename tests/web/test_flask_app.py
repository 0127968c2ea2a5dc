"""The Flask class Glue runs on, and its cookie sessions: the work they skip on
every request changes no answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from flask import Flask, Response, session
from flask.sessions import SecureCookieSessionInterface

from app.auth.sign_in import CookieSessions
from app.web.flask_app import ENSURED_MAX, Glue


def test_a_sync_function_is_checked_once_and_comes_back_as_it_is() -> None:
    app = Glue(__name__)
    calls: list[Callable[..., object]] = []

    def hook() -> None:
        return None

    original = Flask.ensure_sync

    def counting(self: Flask, func: Callable[..., object]) -> Callable[..., object]:
        calls.append(func)
        return original(self, func)

    Flask.ensure_sync = counting  # type: ignore[method-assign]
    try:
        assert app.ensure_sync(hook) is hook
        assert app.ensure_sync(hook) is hook
    finally:
        Flask.ensure_sync = original  # type: ignore[method-assign]
    assert calls == [hook]


def test_a_coroutine_function_is_still_handed_to_flask_every_time() -> None:
    app = Glue(__name__)
    wrapped: list[Callable[..., object]] = []

    def async_to_sync(func: Callable[..., object]) -> Callable[..., object]:
        wrapped.append(func)
        return lambda *args, **kwargs: None

    app.async_to_sync = async_to_sync  # type: ignore[method-assign]

    async def view() -> str:
        await asyncio.sleep(0)
        return "x"

    first, second = app.ensure_sync(view), app.ensure_sync(view)
    assert first is not view and second is not view
    assert wrapped == [view, view]
    assert view not in app._ensured


def test_a_callable_that_cannot_be_hashed_is_still_checked() -> None:
    class Hook:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> None:
            return None

    hook = Hook()
    assert Glue(__name__).ensure_sync(hook) is hook


def test_the_cache_stops_growing_at_its_bound() -> None:
    app = Glue(__name__)
    functions = [(lambda n=n: n) for n in range(ENSURED_MAX + 10)]
    for function in functions:
        assert app.ensure_sync(function) is function
    assert len(app._ensured) == ENSURED_MAX
    assert functions[-1] not in app._ensured
    assert app.ensure_sync(functions[-1]) is functions[-1]


def _answer(interface: SecureCookieSessionInterface, action: str) -> Response:
    app = Flask(__name__)
    app.secret_key = "test-secret"
    app.session_interface = interface

    @app.get("/")
    def index() -> str:
        if action == "read":
            session.get("user")
        elif action == "write":
            session["user"] = "1"
        elif action == "clear":
            session.clear()
        return "ok"

    # A signed-in visitor's cookie for the one that clears it; none otherwise.
    headers = {"Cookie": f"session={_cookie(app)}"} if action == "clear" else {}
    return app.test_client().get("/", headers=headers)


def _cookie(app: Flask) -> str:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    return str(serializer.dumps({"user": "1"}))


@pytest.mark.parametrize("action", ["none", "read", "write", "clear"])
def test_the_session_cookie_and_vary_are_as_flasks_own(action: str) -> None:
    ours = _answer(CookieSessions(), action)
    flasks = _answer(SecureCookieSessionInterface(), action)
    assert ours.headers.getlist("Set-Cookie") == flasks.headers.getlist("Set-Cookie")
    assert ours.headers.get("Vary") == flasks.headers.get("Vary")
    if action in ("write", "clear"):
        assert ours.headers.getlist("Set-Cookie")  # the cases that do set or delete it
    if action == "read":
        assert ours.headers.get("Vary") == "Cookie"
