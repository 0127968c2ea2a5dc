"""Hostile values, and the many ways a request can carry them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

# PINs sent by the fuzz, only ever in a PIN field: none may be found stored or
# logged afterwards. Distinctive, so a hit is never chance.
RIGHT_PIN = "73914682"  # every fuzz user's and group's PIN
WRONG_PINS = ("86420975", "59173064", "31749258", "4826159370", "97531864")
SENT_PINS = (RIGHT_PIN, *WRONG_PINS)

XML_META = (
    "<",
    ">",
    "&",
    '"',
    "'",
    "]]>",
    "<![CDATA[x]]>",
    "<?xml version='1.0'?>",
    "&amp;",
    "&#0;",
    "&#x1F;",
    "<!DOCTYPE r [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><r>&e;</r>",
    "<Response><Hangup/></Response>",
    "</action><action><app>transfer</app>",
    "<script>alert(1)</script>",
    "{name}",
    "{0.__class__}",
    "%s%n",
)
SQL_META = (
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT pin_hash FROM users --",
    "$1",
    "?",
    ":name",
)
CONTROL = (
    "\x00",
    "\x01",
    "\x08",
    "\x1b[31m",
    "\x7f",
    "\r\n",
    "\n",
    "\t",
    "\u2028",
    "\ufeff",
    "\u202e",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "\udfff",
    "\U0001f4de",
)
NUMBERS = (
    "",
    " ",
    "0",
    "-1",
    "+1",
    "1e309",
    "NaN",
    "inf",
    "null",
    "None",
    "NA",
    "9" * 30,
    str(2**63),
    str(2**31),
    str(2**64 + 1),
    "\u0661\u0660\u0660\u0661",  # Arabic-Indic 1001
    "\uff11\uff10\uff10\uff11",  # full-width 1001
    "\u00b2\u00b3",  # superscripts: isdigit() but not int()
    "0x10",
    "0010",
    " 1001 ",
    "1001#",
    "*",
    "#",
    "1001",
    "500",
    "+13125550101",
    "(312) 555-0101",
)
ATOMS = XML_META + SQL_META + CONTROL + NUMBERS

atoms = st.sampled_from(ATOMS)
# Short mixtures of hostile pieces and arbitrary text.
hostile_text = st.one_of(
    atoms,
    st.text(max_size=12),
    st.lists(st.one_of(atoms, st.text(max_size=4)), min_size=2, max_size=5).map("".join),
)
# Sometimes far past every length limit (fields 256, call ids 128, columns 20-500).
long_text = st.tuples(hostile_text, st.sampled_from((129, 257, 600, 5000))).map(
    lambda pair: (pair[0] or "x") * (pair[1] // max(1, len(pair[0] or "x")) + 1)
)
values = st.one_of(hostile_text, hostile_text, hostile_text, long_text)


def encoded(text: str, how: str) -> bytes:
    """`text` as bytes the way a client might (mis)encode it."""
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8
    if how == "latin-1":
        return text.encode("latin-1", "replace")
    if how == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")[::-1]  # garbage


ENCODINGS = ("utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "garbage")
encodings = st.sampled_from(ENCODINGS)

Pairs = list[tuple[str, str]]
AUTH_FIELDS = frozenset({"key", "apikey"})


def urlencoded(pairs: Sequence[tuple[str, str]], how: str, raw: bool = False) -> bytes:
    """A query string or form body; `raw` leaves bytes unescaped (they may split fields)."""
    parts = []
    for name, value in pairs:
        n, v = encoded(name, how), encoded(value, how)
        if raw:
            parts.append(n + b"=" + v)
        else:
            parts.append(
                quote_from_bytes(n, safe="").encode() + b"=" + quote_from_bytes(v, safe="").encode()
            )
    return b"&".join(parts)


BROKEN_ESCAPES = (b"", b"", b"", b"%", b"%zz", b"%ff%fe", b"%00", b"&&==&", b"=", b"+%2B+", b";a=b")


def multipart(pairs: Sequence[tuple[str, str]], how: str, boundary: str, with_file: bool) -> bytes:
    """A multipart/form-data body (names are not escaped: hostile ones break it)."""
    b = boundary.encode("utf-8", "surrogatepass")
    out = b""
    for name, value in pairs:
        out += (
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="'
            + encoded(name, how)
            + b'"\r\n\r\n'
        )
        out += encoded(value, how) + b"\r\n"
    if with_file:
        out += (
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="file"; filename="../../x.csv"\r\n'
        )
        out += b"Content-Type: text/csv\r\n\r\nkind,number\r\nuser,1\r\n"
    return out + b"--" + b + b"--\r\n"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), values),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(values, children, max_size=4)
    ),
    max_leaves=12,
)

XML_BODIES = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 "
    b"'&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]><lolz>&lol2;</lolz>",
    b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><r>&e;</r>",
    b"<Response><Say>hi</Say></Response>",
    b"<action><app>hangup</app></action>",
    b"<unclosed>",
    b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-16'?><a/>",
)

JSON_BODIES = (
    b"[" * 30000 + b"]" * 30000,  # deeper than Python's json reads
    b'{"user": "1001\\u0000", "target": {"kind": "user", "value": "1001"}}',
    b'{"number": "+1312555\\u00000101", "method": "code", "code": "1\\u0000"}',
    b'{"user": "1001", "user": "1002"}',
    b"\xef\xbb\xbf{}",
    b"NaN",
)

CONTENT_TYPES = (
    None,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=nonsense",
    "multipart/form-data",  # no boundary
    "application/json",
    "application/json; charset=latin-1",
    "text/xml",
    "application/xml",
    "text/plain",
    "application/octet-stream",
    'x/y; a="unterminated',
    "multipart/mixed; boundary=x",
    "\u00e9/\u00e9",
)


@dataclass(frozen=True)
class Body:
    """A request body and the content type it is sent with."""

    data: bytes = b""
    content_type: str | None = None


@st.composite
def bodies(draw: st.DrawFn, pairs: Pairs) -> Body:
    """`pairs` as a form, a multipart body, JSON, XML or noise, under any content type."""
    kind = draw(
        st.sampled_from(("none", "form", "form", "raw_form", "multipart", "json", "xml", "noise"))
    )
    how = draw(encodings)
    if kind == "none":
        return Body(content_type=draw(st.sampled_from(CONTENT_TYPES)))
    if kind in ("form", "raw_form"):
        data = urlencoded(pairs, how, raw=kind == "raw_form") + draw(
            st.sampled_from(BROKEN_ESCAPES)
        )
        content_type = draw(
            st.sampled_from(("application/x-www-form-urlencoded",) * 4 + CONTENT_TYPES)
        )
        return Body(data, content_type)
    if kind == "multipart":
        boundary = draw(st.sampled_from(("glueboundary", "x", "--", "\u00e9", "a" * 80)))
        data = multipart(pairs, how, boundary, draw(st.booleans()))
        content_type = draw(
            st.sampled_from((f"multipart/form-data; boundary={boundary}",) * 3 + CONTENT_TYPES)
        )
        return Body(data, content_type)
    if kind == "json":
        if draw(st.integers(0, 4)) == 0:
            return Body(draw(st.sampled_from(JSON_BODIES)), "application/json")
        document = draw(st.one_of(json_values, st.just(dict(pairs))))
        data = json.dumps(document, ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
        return Body(data, draw(st.sampled_from(("application/json",) * 3 + CONTENT_TYPES)))
    if kind == "xml":
        return Body(
            draw(st.sampled_from(XML_BODIES)), draw(st.sampled_from(("text/xml", *CONTENT_TYPES)))
        )
    return Body(draw(st.binary(max_size=64)), draw(st.sampled_from(CONTENT_TYPES)))


def field_pairs(
    names: Sequence[str], value_for: dict[str, st.SearchStrategy[str]]
) -> st.SearchStrategy[Pairs]:
    """Fields named from `names` (or anything), some twice, with hostile or plausible values."""
    # Credentials are placed by the tests alone, so whether a request is
    # authenticated is never left to chance.
    anything = hostile_text.filter(lambda n: n not in AUTH_FIELDS)
    name = st.one_of(st.sampled_from(tuple(names)), st.sampled_from(tuple(names)), anything)

    @st.composite
    def pair(draw: st.DrawFn) -> tuple[str, str]:
        chosen = draw(name)
        strategy = value_for.get(chosen)
        value = draw(st.one_of(strategy, values)) if strategy is not None else draw(values)
        return chosen, value

    return st.lists(pair(), max_size=8)
