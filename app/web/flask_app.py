"""The Flask class Glue runs on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class Glue(Flask):
    """Flask, with each sync view's and hook's check made once.

    Flask asks `inspect` whether a function is a coroutine function every time it
    calls a view or a request hook, a dozen times a request; the answer never
    changes for a registered function, and those are few. Only the sync ones
    are remembered (a coroutine function gets Flask's wrapper each time, as
    without this), and at most ENSURED_MAX: a function made anew for each
    request would otherwise stay referenced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ensured: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            if func in self._ensured:
                return func
        except TypeError:  # a callable object that cannot be hashed
            return super().ensure_sync(func)
        checked = super().ensure_sync(func)
        if checked is func and len(self._ensured) < ENSURED_MAX:
            self._ensured.add(func)
        return checked


# Views, hooks and error handlers: far fewer than this in any app.
ENSURED_MAX = 4096
