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


@dataclass(frozen=True)
class Guard:
    port: int
    bind: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def hosts(self) -> set[str]:
        """The Host header values that name this server."""
        names = {"127.0.0.1", "localhost", "[::1]"}
        if self.bind not in ("127.0.0.1", "localhost", "0.0.0.0", "::"):
            names.add(f"[{self.bind}]" if ":" in self.bind else self.bind)
        return {f"{name}:{self.port}" for name in names}

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

    def address(self) -> str:
        shown = "127.0.0.1" if self.loopback_only else self.bind
        return f"http://{shown}:{self.port}/?token={self.token}"
