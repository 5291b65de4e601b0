"""Where a named lab may live: a free subnet from the pool, free ports from a range.

Pure: what is taken is handed in (every Docker network's subnets, every port another
named lab recorded), and whether a port is free right now is a function the caller
passes. The caller holds the lock (``lab.engine.named``) so that two labs starting at
once never choose the same.

The pool is 10.210.0.0/16 cut into /24s (256 labs), away from the lab's default
10.203.0.0/24 and the address ranges Docker hands out by itself (172.17-31.x and
192.168.x); ports come from 20000-29999, below the kernel's ephemeral range
(32768-60999), where Docker's own picks and every client socket land.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from ipaddress import IPv4Network

from lab.errors import UsageError

POOL = "10.210.0.0/16"
PREFIX_LENGTH = 24
PORTS = range(20000, 30000)


def parse_pool(text: str) -> IPv4Network:
    try:
        pool = ipaddress.ip_network(text)
    except ValueError as exc:
        raise UsageError(f"subnet pool {text!r}: {exc}") from None
    if not isinstance(pool, IPv4Network) or pool.prefixlen > PREFIX_LENGTH:
        raise UsageError(f"subnet pool {text!r}: an IPv4 network of /{PREFIX_LENGTH} or larger")
    return pool


def parse_ports(text: str) -> range:
    """``20000-29999`` (both ends included)."""
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
        raise UsageError(f"port range {text!r}: expected LOW-HIGH, as in 20000-29999")
    return range(int(low), int(high) + 1)


def free_subnet(pool: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first /24 of the pool that overlaps no taken network (None: the pool is full)."""
    taken = [t for t in taken if t.overlaps(pool)]
    for candidate in pool.subnets(new_prefix=PREFIX_LENGTH):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    return None


def prefix_of(subnet: IPv4Network) -> str:
    """The first three octets of a /24, as LAB_NET_PREFIX takes them: ``10.210.3``."""
    return str(subnet.network_address).rsplit(".", 1)[0]


def free_ports(
    count: int,
    candidates: range,
    taken: Iterable[int],
    is_free: Callable[[int], bool],
) -> list[int]:
    """``count`` ports from ``candidates``, lowest first, none taken and each free now;
    fewer when the range runs out."""
    skip = set(taken)
    chosen: list[int] = []
    for port in candidates:
        if len(chosen) == count:
            break
        if port not in skip and is_free(port):
            chosen.append(port)
    return chosen


def ipv4_networks(subnets: Iterable[str]) -> list[IPv4Network]:
    """The IPv4 networks among Docker's IPAM subnets (IPv6 ones and junk are left out)."""
    out = []
    for text in subnets:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if isinstance(network, IPv4Network):
            out.append(network)
    return out
