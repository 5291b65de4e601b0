"""A host's sockets, each with the process and file descriptor that own it.

The port table is the seed's "table of port numbers and the process that is
listening", read the way ``ss -ltunp`` reads it: sockets from
``/proc/net/{tcp,udp}[6]`` (one table per network namespace, so per lab host),
owners by matching socket inode numbers against ``/proc/<pid>/fd`` links
(visible for every process in the host's PID namespace). A socket *is* a file
descriptor: ``/proc/<pid>/fd/6 -> socket:[2962618]`` says that fd 6 of that
process is the socket the kernel's table lists under inode 2962618.

Each owner is named by what the kernel knows: its cgroup (``/proc/<pid>/cgroup``)
names the container it runs in, which the driver maps to its Compose service. A
``LAB_SERVICE`` in its environment overrides that (a helper container of the
driver's, which no Compose service names).

The socket table (``--all``) is every TCP and UDP socket in any state, the way
``ss -tanup`` reads it: connections with their TCP state and queues, sockets the
kernel keeps for no process (TIME_WAIT), and sockets a process holds that no
table lists (not yet bound, or closed after a reset).

Run inside a host: ``python3 -m services.probes.porttable [--all | --processes]``
prints JSON. The parsing functions are pure, so they are tested on captured text.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any

TCP_LISTEN = "0A"
TCP_CLOSE = "07"  # what an unconnected, bound UDP socket shows
SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")
# A container id anywhere in a cgroup path: Docker's cgroupfs "/docker/ID", systemd's
# ".../docker-ID.scope", or "/../ID" as seen from another container's cgroup namespace.
CONTAINER_ID = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
OWN = "."  # the container the probe runs in (the host's own), as container_of names it
# include/net/tcp_states.h; /proc/net/tcp prints the number in hex.
TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
    "0C": "NEW_SYN_RECV",
}
# UDP has no states; the kernel reuses two TCP numbers (ss calls 07 UNCONN).
UDP_STATES = {"01": "ESTABLISHED", "07": "UNCONN"}
TIMERS = {"1": "retransmit", "2": "keepalive", "3": "timewait", "4": "probe"}
USER_HZ = 100  # /proc/net/tcp prints timers in clock ticks (jiffies_delta_to_clock_t)


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
    fd: int | None = None  # which of its file descriptors the socket is
    container: str = ""  # container_of its cgroup


@dataclass(frozen=True)
class Entry:
    protocol: str
    address: str
    port: int
    pid: int | None
    command: str
    service: str  # LAB_SERVICE, else (filled in by the driver) its container's service
    fd: int | None = None  # the owner's file descriptor (None: no owner, or older records)
    container: str = ""  # the owner's container_of ("" in older records)


@dataclass(frozen=True)
class KernelSocket:
    """One line of /proc/net/{tcp,udp}[6]: a socket as the kernel's table holds it."""

    protocol: str
    state: str  # LISTEN, ESTABLISHED, TIME_WAIT, ... (TCP); UNCONN or ESTABLISHED (UDP)
    local: str  # "10.203.0.20:8080"
    remote: str  # "0.0.0.0:0" when it has no peer
    send_q: int  # bytes sent but not yet acknowledged (TCP), or queued to send (UDP)
    recv_q: int  # bytes received but not yet read; for LISTEN: connections awaiting accept()
    timer: str  # "timewait 59.5s", "keepalive 7199.9s", "" when none runs
    inode: int  # 0 when no file refers to it any more (TIME_WAIT, an orphaned FIN_WAIT2)


@dataclass(frozen=True)
class HostSocket:
    """A row of the socket table: a kernel socket and who holds it.

    ``protocol`` and ``state`` are "" for a socket a process holds that no table
    lists: created but not yet bound or connected, or a TCP socket that is
    closed (reset, or refused) while its file descriptor is still open.
    """

    protocol: str
    state: str
    local: str
    remote: str
    send_q: int
    recv_q: int
    timer: str
    inode: int
    pid: int | None
    fd: int | None
    command: str
    service: str
    container: str = ""


@dataclass(frozen=True)
class RunningProcess:
    """A process of the host's PID namespace."""

    pid: int
    service: str
    command: str
    started: int  # clock ticks after boot (/proc/<pid>/stat field 22): orders processes
    container: str = ""  # container_of its cgroup


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
    return set(socket_fds(dict(enumerate(fd_links))).values())


def socket_fds(fd_links: dict[int, str]) -> dict[int, int]:
    """fd -> socket inode, from {fd: readlink(/proc/<pid>/fd/<fd>)}."""
    found = {}
    for fd, link in fd_links.items():
        match = SOCKET_LINK.match(link)
        if match:
            found[fd] = int(match.group(1))
    return found


def parse_proc_net_all(protocol: str, text: str) -> list[KernelSocket]:
    """Every socket of one /proc/net table, in any state (``ss -tan`` / ``ss -uan``)."""
    states = TCP_STATES if protocol.startswith("tcp") else UDP_STATES
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, local_port = decode_address(fields[1])
        remote, remote_port = decode_address(fields[2])
        tx, rx = (int(n, 16) for n in fields[4].split(":"))
        sockets.append(
            KernelSocket(
                protocol,
                states.get(fields[3], f"state {fields[3]}"),
                f"{local}:{local_port}",
                f"{remote}:{remote_port}",
                tx,
                rx,
                timer_text(fields[5]),
                int(fields[9]),
            )
        )
    return sockets


def timer_text(field: str) -> str:
    """'03:0000173D' (timer kind : clock ticks left) as 'timewait 59.5s'."""
    kind, _, when = field.partition(":")
    name = TIMERS.get(kind.lstrip("0") or "0")
    if name is None:
        return ""
    return f"{name} {int(when, 16) / USER_HZ:.1f}s"


def other_socket_inodes(unix: str, netlink: str) -> set[int]:
    """Inodes of the namespace's Unix and netlink sockets (their tables' Inode column):
    sockets a process holds that are neither TCP nor UDP."""
    found = set()
    for line in unix.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 7 and fields[6].isdigit():
            found.add(int(fields[6]))
    for line in netlink.splitlines()[1:]:
        fields = line.split()
        if fields and fields[-1].isdigit():
            found.add(int(fields[-1]))
    return found


def start_time(stat: str) -> int:
    """Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces."""
    return int(stat.rsplit(")", 1)[1].split()[19])


def service_of(environ: bytes) -> str:
    """The LAB_SERVICE value in a /proc/<pid>/environ block."""
    for item in environ.split(b"\0"):
        if item.startswith(b"LAB_SERVICE="):
            return item.split(b"=", 1)[1].decode("utf-8", "replace")
    return ""


def container_of(cgroup: bytes) -> str:
    """The container a process runs in, from its /proc/<pid>/cgroup (cgroup v1 or v2).

    The last 64-hex id the paths name; OWN when every path is "/" (under cgroup
    v2 Docker gives each container a private cgroup namespace, so the reader's own
    container is its root, while another container's reads as "/../ID"); "" when the
    paths name no container (not under Docker, or a cgroup made inside the container).
    """
    found = CONTAINER_ID.findall(cgroup)
    if found:  # the innermost: Docker in Docker nests one engine's ids under another's
        return bytes(found[-1]).decode("ascii")
    paths = [line.split(b":", 2)[2] for line in cgroup.splitlines() if line.count(b":") >= 2]
    return OWN if paths and all(p == b"/" for p in paths) else ""


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
                owner.fd if owner else None,
                owner.container if owner else "",
            )
        )
    return sorted(rows, key=lambda e: (e.port, e.protocol, e.address))


STATE_ORDER = ("LISTEN", "UNCONN")  # servers first, as `ss -a` reads best


def join_all(
    sockets: list[KernelSocket], owners: dict[int, Owner], others: set[int]
) -> list[HostSocket]:
    """Every socket with its owner, plus the sockets owners hold that no TCP or UDP table
    lists (``others``: inodes of Unix and netlink sockets, left out)."""
    unlisted = KernelSocket("", "", "", "", 0, 0, "", 0)
    rows = [_held(s, owners.get(s.inode) if s.inode else None) for s in sockets]
    listed = {s.inode for s in sockets} | others
    for inode, owner in owners.items():
        if inode not in listed:
            rows.append(_held(replace(unlisted, inode=inode), owner))
    return sorted(rows, key=_order)


def _held(s: KernelSocket, owner: Owner | None) -> HostSocket:
    return HostSocket(
        **asdict(s),
        pid=owner.pid if owner else None,
        fd=owner.fd if owner else None,
        command=owner.command if owner else "",
        service=owner.service if owner else "",
        container=owner.container if owner else "",
    )


def _order(row: HostSocket) -> tuple[int, str, int, str, str, int]:
    """Listening sockets by port, then connections, then sockets in no table (by owner)."""
    server = 0 if row.state in STATE_ORDER else 1 if row.state else 2
    port = int(row.local.rsplit(":", 1)[1]) if server == 0 else 0
    return (server, row.protocol, port, row.local, row.remote, row.fd or 0)


# --- reading /proc (the only I/O) ---------------------------------------------


PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""  # no IPv6 in this namespace


def read_sockets(proc: str = "/proc") -> list[Socket]:
    sockets: list[Socket] = []
    for protocol in PROTOCOLS:
        sockets.extend(parse_proc_net(protocol, _read(f"{proc}/net/{protocol}")))
    return sockets


def read_all_sockets(proc: str = "/proc") -> list[KernelSocket]:
    sockets: list[KernelSocket] = []
    for protocol in PROTOCOLS:
        sockets.extend(parse_proc_net_all(protocol, _read(f"{proc}/net/{protocol}")))
    return sockets


def _pids(proc: str) -> list[int]:
    return sorted(int(name) for name in os.listdir(proc) if name.isdigit())


def _identity(proc: str, pid: int) -> tuple[str, str, str]:
    """Its command line, LAB_SERVICE and container_of. cmdline and cgroup are readable for
    every process; environ only for one's own user's (else no LAB_SERVICE)."""
    with open(f"{proc}/{pid}/cmdline", "rb") as f:
        command = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    with open(f"{proc}/{pid}/cgroup", "rb") as f:
        container = container_of(f.read())
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            service = service_of(f.read())
    except PermissionError:
        service = ""
    return command, service, container


def read_owners(proc: str = "/proc") -> dict[int, Owner]:
    """Socket inode -> the first process (lowest pid) and fd (lowest) that hold it."""
    owners: dict[int, Owner] = {}
    for pid in _pids(proc):
        try:
            fd_dir = f"{proc}/{pid}/fd"
            links = {}
            for name in os.listdir(fd_dir):
                with contextlib.suppress(FileNotFoundError):  # closed while we looked
                    links[int(name)] = os.readlink(f"{fd_dir}/{name}")
            command, service, container = _identity(proc, pid)
        except OSError:
            continue  # the process ended, or is not ours to read
        for fd, inode in sorted(socket_fds(links).items()):
            owners.setdefault(inode, Owner(pid, command, service, fd, container))
    return owners


def read_processes(proc: str = "/proc") -> list[RunningProcess]:
    found = []
    for pid in _pids(proc):
        try:
            command, service, container = _identity(proc, pid)
            with open(f"{proc}/{pid}/stat") as f:
                started = start_time(f.read())
        except OSError:
            continue
        found.append(RunningProcess(pid, service, command, started, container))
    return found


def main(argv: list[str]) -> int:
    rows: list[Any]
    if argv == ["--all"]:
        others = other_socket_inodes(_read("/proc/net/unix"), _read("/proc/net/netlink"))
        rows = join_all(read_all_sockets(), read_owners(), others)
    elif argv == ["--processes"]:
        rows = read_processes()
    elif not argv:
        rows = join(read_sockets(), read_owners())
    else:
        print("usage: python3 -m services.probes.porttable [--all | --processes]", file=sys.stderr)
        return 2
    json.dump([asdict(r) for r in rows], sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
