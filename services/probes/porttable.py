"""A host's port table: every listening TCP socket and bound UDP socket, with its owner.

This is the seed's "table of port numbers and the process that is listening",
read the way ``ss -ltunp`` reads it: sockets from ``/proc/net/{tcp,udp}[6]``
(one table per network namespace, so per lab host), owners by matching socket
inode numbers against ``/proc/<pid>/fd`` links (visible for every process in
the host's PID namespace).

Run inside a host: ``python3 -m services.probes.porttable`` prints the table as JSON.
The parsing functions are pure, so they are tested on captured text.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
from dataclasses import asdict, dataclass

TCP_LISTEN = "0A"
TCP_CLOSE = "07"  # what an unconnected, bound UDP socket shows
SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")


@dataclass(frozen=True)
class Socket:
    protocol: str  # tcp, udp, tcp6, udp6
    address: str
    port: int
    inode: int


@dataclass(frozen=True)
class Owner:
    pid: int
    command: str
    service: str  # LAB_SERVICE of the process, "" when it has none


@dataclass(frozen=True)
class Entry:
    protocol: str
    address: str
    port: int
    pid: int | None
    command: str
    service: str


def decode_address(hex_address: str) -> tuple[str, int]:
    """Decode '0100007F:1F90' (IPv4) or the 32-digit IPv6 form, as the kernel prints them."""
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    if len(raw) == 4:
        # The kernel prints the address as a host-order 32-bit word.
        address = socket.inet_ntop(socket.AF_INET, struct.pack("<I", struct.unpack(">I", raw)[0]))
    elif len(raw) == 16:
        words = struct.unpack(">4I", raw)
        address = socket.inet_ntop(socket.AF_INET6, struct.pack("<4I", *words))
    else:
        raise ValueError(f"not a /proc/net address: {hex_address!r}")
    return address, int(port_hex, 16)


def parse_proc_net(protocol: str, text: str) -> list[Socket]:
    """Listening TCP sockets, or unconnected bound UDP sockets, from one /proc/net table."""
    wanted = TCP_LISTEN if protocol.startswith("tcp") else TCP_CLOSE
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted:
            continue
        remote_port = int(fields[2].split(":")[1], 16)
        if protocol.startswith("udp") and remote_port != 0:
            continue  # a connected UDP socket is a client, not a listener
        address, port = decode_address(fields[1])
        sockets.append(Socket(protocol, address, port, int(fields[9])))
    return sockets


def socket_inodes(fd_links: list[str]) -> set[int]:
    """Socket inode numbers among readlink() results of /proc/<pid>/fd/*."""
    found = set()
    for link in fd_links:
        match = SOCKET_LINK.match(link)
        if match:
            found.add(int(match.group(1)))
    return found


def service_of(environ: bytes) -> str:
    """The LAB_SERVICE value in a /proc/<pid>/environ block."""
    for item in environ.split(b"\0"):
        if item.startswith(b"LAB_SERVICE="):
            return item.split(b"=", 1)[1].decode("utf-8", "replace")
    return ""


def join(sockets: list[Socket], owners: dict[int, Owner]) -> list[Entry]:
    """One row per socket; a socket owned by several processes (after fork) shows the first."""
    rows = []
    for s in sockets:
        owner = owners.get(s.inode)
        rows.append(
            Entry(
                s.protocol,
                s.address,
                s.port,
                owner.pid if owner else None,
                owner.command if owner else "",
                owner.service if owner else "",
            )
        )
    return sorted(rows, key=lambda e: (e.port, e.protocol, e.address))


# --- reading /proc (the only I/O) ---------------------------------------------


def read_sockets(proc: str = "/proc") -> list[Socket]:
    sockets: list[Socket] = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"{proc}/net/{protocol}") as f:
                sockets.extend(parse_proc_net(protocol, f.read()))
        except FileNotFoundError:
            continue  # no IPv6 in this namespace
    return sockets


def read_owners(proc: str = "/proc") -> dict[int, Owner]:
    owners: dict[int, Owner] = {}
    for name in sorted(os.listdir(proc), key=lambda n: (len(n), n)):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            fd_dir = f"{proc}/{pid}/fd"
            links = [os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)]
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open(f"{proc}/{pid}/environ", "rb") as f:
                service = service_of(f.read())
        except OSError:
            continue  # the process ended, or is not ours to read
        for inode in socket_inodes(links):
            owners.setdefault(inode, Owner(pid, command, service))
    return owners


def main() -> None:
    rows = join(read_sockets(), read_owners())
    json.dump([asdict(r) for r in rows], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
