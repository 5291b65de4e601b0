"""The struck host's own account of a row: its ICMP and UDP counters (/proc/net/snmp) and
the ports its UDP sockets are bound to (/proc/net/udp), read before the fault and again at
the end of the probes, the fault still in place.

A refusal the matrix expected and did not see then carries the kernel's evidence: a
datagram that found no socket is counted in Udp NoPorts; the port unreachable it draws in
Icmp OutDestUnreachs, or, when the kernel's ICMP rate limits held it back, in
OutRateLimitHost (per destination) or OutRateLimitGlobal (counters added to Linux in
2023: an older kernel's reading lacks them); one that found a socket, in Udp InDatagrams.
The counters are the host's network namespace's, which its processes share: every
client's datagrams to that host are in them, and its own loopback traffic (healthchecks).
Parsing and reading the difference are pure; ``read`` is the one I/O.
"""

from __future__ import annotations

import re
from typing import Any

from lab.errors import LabError
from lab.experiments.model import Context

COUNTERS = {
    "Icmp": ("OutDestUnreachs", "OutRateLimitGlobal", "OutRateLimitHost"),
    "Udp": ("InDatagrams", "NoPorts", "InErrors"),
}
READ = ["cat", "/proc/net/snmp", "/proc/net/udp"]
_SOCKET = re.compile(r"^\s*\d+: [0-9A-Fa-f]+:([0-9A-Fa-f]{4}) ")


def parse(text: str) -> dict[str, Any]:
    """``{"counters": {name: n}, "udp_ports": [port, ...]}`` from /proc/net/snmp followed
    by /proc/net/udp. A counter this kernel does not keep is absent, not 0. Pure."""
    counters: dict[str, int] = {}
    ports: list[int] = []
    header: dict[str, list[str]] = {}
    for line in text.splitlines():
        socket = _SOCKET.match(line)
        if socket:
            ports.append(int(socket[1], 16))
            continue
        group, _, rest = line.partition(":")
        fields = rest.split()
        if group not in COUNTERS or not fields:
            continue
        if group not in header:  # each group is a line of names, then a line of values
            header[group] = fields
            continue
        values = dict(zip(header[group], fields, strict=False))
        counters.update({k: int(values[k]) for k in COUNTERS[group] if k in values})
    return {"counters": counters, "udp_ports": sorted(set(ports))}


def read(ctx: Context, hosts: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each host's reading; None where the host cannot be read (killed, or frozen)."""
    found: dict[str, dict[str, Any] | None] = {}
    for host in hosts:
        try:
            found[host] = parse(ctx.lab.backend.run_in(host, READ, timeout=5.0).decode())
        except LabError:
            found[host] = None
    return found


def evidence(before: dict[str, Any] | None, after: dict[str, Any] | None, port: int) -> str:
    """What the struck host's kernel counted while the fault was in place, in words. Pure."""
    if before is None or after is None:
        return "the struck host's counters could not be read (the host was down or frozen)"
    was, now = before["counters"], after["counters"]
    moved = {k: now[k] - was[k] for k in now if k in was and now[k] != was[k]}
    counted = ", ".join(f"{k}+{n}" for k, n in moved.items()) or "no counter moved"
    said = [f"the struck host's kernel counted {counted}"]
    if "OutRateLimitHost" not in now:
        said.append("this kernel does not count ICMP rate limiting")
    limited = moved.get("OutRateLimitHost", 0) + moved.get("OutRateLimitGlobal", 0)
    if limited:
        said.append(f"{limited} ICMP held back by its rate limits")
    if port in after["udp_ports"]:
        said.append(f"a socket was still bound to {port}")
    no_port = moved.get("NoPorts", 0)
    if no_port and not limited and moved.get("OutDestUnreachs", 0) >= no_port:
        said.append("every datagram that found no socket drew a port unreachable")
    if not moved.get("NoPorts", 0) and not moved.get("InDatagrams", 0):
        said.append("no datagram reached the host")
    return "; ".join(said)
