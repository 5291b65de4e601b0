"""Is a service answering? Its own declared healthcheck, run by the lab now.

Docker runs a container's first healthcheck one ``interval`` after the container
starts (Docker 20.10 has no ``start_interval``), so a lab waiting for Docker's
"healthy" waits at least a second after every service already answers. The lab
runs the same check itself as soon as the container runs, and takes either its
success or Docker's "healthy" as ready; Docker's health column catches up at its
first interval. The check is the one the Compose file declares (``healthcheck.test``),
so a topology of one's own is judged by its own checks:

- ``true`` (the lab's hosts), or no check at all: running is enough;
- the lab's own checks (``services.runtime.healthcheck KIND PORT``) are run from here,
  over the lab network, when this machine reaches the host's address directly (the
  same code, the same request; no Python start-up inside the container, which takes
  longer than the check);
- anything else is run in the container, as Docker would run it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors

from lab.services.runtime import healthcheck

OURS = ["python3", "-m", "services.runtime.healthcheck"]
DIRECT_TIMEOUT = 0.25  # a check that fails is run again at the next poll: it need not wait


def probe_argv(test: Sequence[str] | None, timeout: float) -> list[str] | None:
    """The command that runs a healthcheck's ``test`` in its container, bounded by
    ``timeout``; None when there is nothing to run (no check, NONE, or ``true``)."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        argv = list(test[1:])
    elif test[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(test[1:])]
    else:
        argv = list(test)
    if not argv or argv == ["true"]:
        return None
    return ["timeout", "-s", "KILL", f"{timeout:g}", *argv]


def direct_check(argv: Sequence[str]) -> tuple[str, int] | None:
    """(KIND, PORT) when ``argv`` is one of the lab's own checks that can run from outside
    the host (``listening`` reads the host's /proc: it cannot)."""
    rest = list(argv[3:]) if list(argv[:3]) == OURS else []
    if len(rest) == 2 and rest[0] in healthcheck.CHECKS and rest[1].isdigit():
        return rest[0], int(rest[1])
    return None


def reachable(address: str, subnet: str) -> bool:
    """Whether this machine is on the link of ``address`` (a lab bridge here): the route
    the kernel picks to it leaves from an address of its own in ``subnet``."""
    try:
        network = ipaddress.ip_network(subnet, strict=False)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((address, 9))  # no datagram is sent: this only picks a route
            local = s.getsockname()[0]
    except (OSError, ValueError):
        return False
    return ipaddress.ip_address(local) in network and local != address


def answers(container: Any, address: str, subnet: str, timeout: float = 3.0) -> bool:
    """Whether the container's declared healthcheck passes when run now."""
    check = (container.attrs.get("Config") or {}).get("Healthcheck") or {}
    argv = probe_argv(check.get("Test"), timeout)
    if argv is None:
        return True
    direct = direct_check(argv[4:])
    if direct is not None and address and reachable(address, subnet):
        kind, port = direct
        try:
            return bool(healthcheck.CHECKS[kind](port, address, DIRECT_TIMEOUT))
        except OSError:
            return False
    try:
        code, _ = container.exec_run(argv)
    except docker.errors.APIError:  # not running (any more), or paused: not answering
        return False
    return bool(code == 0)


def answering(containers: dict[str, tuple[Any, str, str]], timeout: float = 3.0) -> set[str]:
    """The names, among ``containers`` (name: (container, its host's address, that
    network's subnet)), whose checks pass now, run side by side."""
    if not containers:
        return set()
    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
        results = pool.map(lambda c: answers(c[0], c[1], c[2], timeout), containers.values())
        return {name for name, ok in zip(containers, results, strict=True) if ok}
