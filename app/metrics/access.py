"""Who may read /metrics: a Bearer token, or a source address on the allow list.

Neither configured, nobody may: the counts say how the service is used, and a
reverse proxy on the same host would make every visitor look local.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Access:
    token: str
    allowed: tuple[Network, ...]

    @classmethod
    def from_settings(cls, token: str, allow: str) -> Access:
        """From GLUE_METRICS_TOKEN and GLUE_METRICS_ALLOW (comma-separated
        addresses and networks); ValueError naming an entry that is neither."""
        networks = []
        for entry in (part.strip() for part in allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"GLUE_METRICS_ALLOW: {entry[:64]!r} is not an address or network"
                ) from None
        return cls(token, tuple(networks))

    def admits(self, authorization: str | None, source: str | None) -> bool:
        """Whether a request with this Authorization header, from this address, may read."""
        return self._has_token(authorization or "") or self._is_allowed(source or "")

    def _has_token(self, authorization: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        if not self.token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    def _is_allowed(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        # An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed)
