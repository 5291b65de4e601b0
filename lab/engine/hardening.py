"""How every container the driver creates itself is locked down: one recipe per kind.

Compose's own containers take theirs from compose.yaml's ``x-image`` anchor; the ones
the driver starts through the engine's API (helpers, a benchmark's servers, db on a
volatile disk, a Swarm's network anchors) take theirs from here, and nowhere else.
tests/pure/test_hardening.py holds PROCESS to the anchor, and the Docker tier reads
every kind back from the engine.

- PROCESS: a lab process, as Compose starts one: uid 10001, read-only root, no
  capability and no way to gain one, the same ceilings on processes and memory.
- HELPER: a short-lived tool in a host's namespaces (tcpdump, tc, strace, a socket
  script). Root only when it is granted a capability (Docker 20.10 grants no
  ambient ones to another uid), and then only that capability.
- COMPANION: a container that only holds something open (an overlay on a machine):
  a sleep under Docker's init, with the smallest ceilings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

UNPRIVILEGED = "10001:10001"  # the lab's user in every image (services/Dockerfile)
NO_NEW_PRIVILEGES = "no-new-privileges:true"


@dataclass(frozen=True)
class Profile:
    kind: str
    user: str
    read_only: bool
    cap_add: tuple[str, ...]
    pids_limit: int
    mem_limit: str
    init: bool = False
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = (NO_NEW_PRIVILEGES,)

    def host_config(self) -> dict[str, Any]:
        """The keywords ``APIClient.create_host_config`` takes (no user: that is the
        container's, not its host config's)."""
        settings: dict[str, Any] = {
            "read_only": self.read_only,
            "cap_drop": list(self.cap_drop),
            "security_opt": list(self.security_opt),
            "pids_limit": self.pids_limit,
            "mem_limit": self.mem_limit,
        }
        if self.cap_add:
            settings["cap_add"] = list(self.cap_add)
        if self.init:
            settings["init"] = True
        return settings

    def run_kwargs(self) -> dict[str, Any]:
        """The keywords ``containers.run`` takes."""
        return {"user": self.user, **self.host_config()}

    def differences(self, host_config: dict[str, Any], user: str) -> list[str]:
        """How a container, as the engine inspects it (``HostConfig``, ``Config.User``),
        differs from this profile: [] when it does not."""
        wanted = self.run_kwargs()
        seen = {
            "user": user,
            "read_only": bool(host_config.get("ReadonlyRootfs")),
            "cap_drop": list(host_config.get("CapDrop") or []),
            "cap_add": list(host_config.get("CapAdd") or []),
            "security_opt": list(host_config.get("SecurityOpt") or []),
            "pids_limit": host_config.get("PidsLimit"),
            "mem_limit": host_config.get("Memory"),
            "init": bool(host_config.get("Init")),
        }
        wanted.setdefault("cap_add", [])
        wanted.setdefault("init", False)
        wanted["mem_limit"] = memory_bytes(self.mem_limit)
        return [
            f"{key}: {seen[key]!r}, not {wanted[key]!r}"
            for key in sorted(wanted)
            if _normal(seen[key]) != _normal(wanted[key])
        ]


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return sorted(str(v).removeprefix("CAP_") for v in value)
    return value


def memory_bytes(text: str) -> int:
    """Docker's memory notation (``256m``) in bytes."""
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    unit = text[-1].lower()
    if unit in units:
        return int(text[:-1]) * units[unit]
    return int(text)


PROCESS = Profile(
    "process", UNPRIVILEGED, read_only=True, cap_add=(), pids_limit=64, mem_limit="256m"
)
COMPANION = Profile(
    "companion", UNPRIVILEGED, read_only=True, cap_add=(), pids_limit=8, mem_limit="32m", init=True
)
_HELPER = Profile(
    "helper", UNPRIVILEGED, read_only=False, cap_add=(), pids_limit=16, mem_limit="128m"
)


def helper(*capabilities: str) -> Profile:
    """A helper granted ``capabilities`` (none: it runs as the lab's user)."""
    granted = tuple(c for c in capabilities if c)
    return replace(_HELPER, cap_add=granted, user="0:0" if granted else UNPRIVILEGED)
