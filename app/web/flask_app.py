"""The Flask class Glue runs on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class Glue(Flask):
    """Flask, with each view's and hook's sync check made once.

    Flask asks `inspect` whether a function is a coroutine function every time it
    calls a view or a request hook, a dozen times a request; the answer never
    changes for a registered function, and those are few."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ensured: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        checked = self._ensured.get(func)
        if checked is None:
            checked = super().ensure_sync(func)
            if len(self._ensured) < ENSURED_MAX:
                self._ensured[func] = checked
        return checked


# Views, hooks and error handlers: far fewer than this in any app.
ENSURED_MAX = 4096
