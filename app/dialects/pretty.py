"""Replies as people read them: a platform's XML, indented."""

from __future__ import annotations

from lxml import etree

# Stored replies are Glue's own, but read as untrusted all the same.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True
)


def pretty_xml(reply: str | bytes) -> str:
    """The XML indented, one element a line; anything that is not XML as it was."""
    data = reply.encode("utf-8") if isinstance(reply, str) else reply
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return data.decode("utf-8", "replace")
    return etree.tostring(root, encoding="unicode", pretty_print=True).rstrip("\n")
