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
- anything else is run in the container, as Docker would run it, but at most once in
  INSIDE_EVERY per container while the lab waits: each run is a process started there
  (a Python start: tens of milliseconds of CPU), and a poll every quarter second over tens of
  containers would take the CPU the services themselves need to start.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors

from lab.services.runtime import healthcheck

OURS = ["python3", "-m", "services.runtime.healthcheck"]
DIRECT_TIMEOUT = 0.25  # a check that fails is run again at the next poll: it need not wait
INSIDE_EVERY = 1.0  # Docker's own default interval: no sooner than Docker would run it again


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


def _from_here(argv: Sequence[str], address: str, subnet: str) -> tuple[str, int] | None:
    """(KIND, PORT) when the check can run from this machine, else None (it runs inside)."""
    direct = direct_check(argv[4:])
    return direct if direct is not None and address and reachable(address, subnet) else None


def runs_inside(container: Any, address: str, subnet: str) -> bool:
    """Whether answering for ``container`` starts a process in it (not from here, not none)."""
    check = (container.attrs.get("Config") or {}).get("Healthcheck") or {}
    argv = probe_argv(check.get("Test"), 3.0)
    return argv is not None and _from_here(argv, address, subnet) is None


def answers(container: Any, address: str, subnet: str, timeout: float = 3.0) -> bool:
    """Whether the container's declared healthcheck passes when run now."""
    check = (container.attrs.get("Config") or {}).get("Healthcheck") or {}
    argv = probe_argv(check.get("Test"), timeout)
    if argv is None:
        return True
    direct = _from_here(argv, address, subnet)
    if direct is not None:
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


def answering(
    containers: dict[str, tuple[Any, str, str]],
    timeout: float = 3.0,
    inside_at: MutableMapping[str, float] | None = None,
) -> set[str]:
    """The names, among ``containers`` (name: (container, its host's address, that
    network's subnet)), whose checks pass now, run side by side. ``inside_at``: when each
    check run inside its container last ran (kept here); one run less than INSIDE_EVERY
    ago is not run again yet, and its container does not answer this time."""
    if inside_at is not None:
        now = time.monotonic()
        due = {}
        for name, (container, address, subnet) in containers.items():
            if runs_inside(container, address, subnet):
                if now - inside_at.get(name, -INSIDE_EVERY) < INSIDE_EVERY:
                    continue
                inside_at[name] = now
            due[name] = (container, address, subnet)
        containers = due
    if not containers:
        return set()
    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
        results = pool.map(lambda c: answers(c[0], c[1], c[2], timeout), containers.values())
        return {name for name, ok in zip(containers, results, strict=True) if ok}
