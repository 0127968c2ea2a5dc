"""Lists as CSV, streamed a row at a time, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
# A cell starting with one of these is a formula to a spreadsheet (or, with a
# tab or carriage return, may become one): a leading ' keeps it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Column = tuple[str, Callable[[T], Any]]


def cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet runs."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def rows(records: Iterable[T], columns: Sequence[Column[T]]) -> Iterator[str]:
    """The header, then each record, as CSV lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(name for name, _ in columns)
    for record in records:
        yield line(cell(read(record)) for _, read in columns)
