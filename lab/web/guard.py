"""Who may drive the lab from a browser (pure).

A page of another site open in the same browser must not: every request must
name this server in its Host header (a DNS-rebinding page names its own), and
every action must carry the token printed at start (`lab web` shows the address
with it, as Jupyter does). A WebSocket's Origin must be this server too.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

TOKEN_HEADER = "X-Lab-Token"
WILDCARDS = ("0.0.0.0", "::")  # addresses that bind every interface


@dataclass(frozen=True)
class Guard:
    port: int
    bind: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Bound to a wildcard, the server is reached through any of this machine's addresses
    # and names (`lab.web.server.own_names`, the address to open first): it answers to
    # those, and to no other name, so a DNS-rebinding page is still refused.
    own: tuple[str, ...] = ()

    @property
    def wildcard(self) -> bool:
        return self.bind in WILDCARDS

    @property
    def hosts(self) -> set[str]:
        """The Host header values that name this server."""
        names = {"127.0.0.1", "localhost", "[::1]"}
        if self.wildcard:
            names.update(literal(name) for name in self.own)
        elif self.bind != "localhost":
            names.add(literal(self.bind))
        return {f"{name.lower()}:{self.port}" for name in names}

    def host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def origin_ok(self, origin: str | None) -> bool:
        """A browser's Origin (absent for non-browser clients) must be this server."""
        if origin is None:
            return True
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and self.host_ok(rest)

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            return self.bind == "localhost"

    def addresses(self) -> list[str]:
        """Where to open the page: the address bound to; bound to a wildcard, each of this
        machine's addresses that another machine may reach (never 0.0.0.0 or ::, which
        name no machine), or 127.0.0.1 when it has none."""
        if self.bind == "localhost":
            shown = ["127.0.0.1"]
        elif self.wildcard:
            shown = [name for name in self.own if reachable(name)] or ["127.0.0.1"]
        else:
            shown = [self.bind]
        return [f"http://{literal(name)}:{self.port}/?token={self.token}" for name in shown]

    def address(self) -> str:
        return self.addresses()[0]


def literal(name: str) -> str:
    """A name or an address as a Host header writes it: IPv6 in brackets."""
    return f"[{name}]" if ":" in name else name


def reachable(name: str) -> bool:
    """An address another machine may open: not loopback, not link-local (whose URL would
    need the interface's zone), and not a host name."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)
