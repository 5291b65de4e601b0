"""What every backend reports, in the topology's words: plain data, and the pure rules
that read it (nothing here talks to an engine)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from lab.services.probes.porttable import Entry, HostSocket, RunningProcess
from lab.topology import Host, Interface, Network, PublishedPort

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
SIGNALS = ("kill", "stop", "start", "pause", "resume", "restart")  # what signal() takes


@dataclass(frozen=True)
class Attachment:
    """A container on one lab network, as Docker reports it."""

    ip: str
    aliases: tuple[str, ...]  # its DNS names there (Docker adds its short id too)
    mac: str


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    status: str  # Docker's: created, running, paused, exited, dead...
    health: str  # healthy, starting, unhealthy, or "none" without a healthcheck
    exit_code: int
    ip: str  # on its first lab network, as Docker reports it; "" when it has none
    # every lab network it is attached to, by the network's key in the topology
    attached: dict[str, Attachment] = field(default_factory=dict)

    @property
    def word(self) -> str:
        """Its state in one word: Docker's status when not running (exited, paused,
        created, dead), else its health (running when healthy or with no check)."""
        if self.status != "running":
            return self.status
        return "running" if self.health in ("healthy", "none") else self.health

    @property
    def ready(self) -> bool:
        return self.status == "running" and self.health in ("healthy", "none")

    @classmethod
    def of(cls, attrs: dict[str, Any], networks: dict[str, Network]) -> ServiceState:
        """From a container as the engine inspects it. ``networks``: the topology's, by
        key (Docker names them PROJECT_KEY)."""
        state = attrs["State"]
        nets = attrs["NetworkSettings"].get("Networks") or {}
        attached = {
            key: Attachment(
                str(nets[n.docker_name].get("IPAddress", "")),
                tuple(nets[n.docker_name].get("Aliases") or ()),
                str(nets[n.docker_name].get("MacAddress", "")),
            )
            for key, n in networks.items()
            if n.docker_name in nets
        }
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return cls(
            service=labels.get(SERVICE_LABEL, "?"),
            container=str(attrs.get("Name") or "?").lstrip("/"),
            status=state["Status"],
            health=(state.get("Health") or {}).get("Status", "none"),
            exit_code=state.get("ExitCode", 0),
            ip=next((a.ip for a in attached.values()), ""),
            attached=attached,
        )


@dataclass(frozen=True)
class HostStatus:
    host: Host
    state: ServiceState | None  # None: no container
    processes: list[ServiceState]
    ports: list[Entry] | None  # None: the host is not running
    published: list[tuple[PublishedPort, int | None]]  # with the host port Docker chose
    differs: list[str]  # how it is not as the topology promises ([]: as promised)
    machine: str = ""  # the machine it runs on, in a lab across machines ("" on one engine)


@dataclass(frozen=True)
class Removed:
    containers: list[str]
    networks: list[str]
    volumes: list[str]

    def __bool__(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)


Owned = TypeVar("Owned", Entry, HostSocket, RunningProcess)


def by_container(
    rows: list[Owned], containers: list[dict[str, Any]], processes: Collection[str]
) -> list[Owned]:
    """Rows whose owner no LAB_SERVICE named, named by the Compose service of its container
    when that is one of the topology's ``processes`` (``containers``: the engine's list,
    each with its Id and Labels). The host's own container is not one: what runs in it (a
    shell, a script the driver started) is named by its command."""
    labels = {c["Id"]: (c.get("Labels") or {}).get(SERVICE_LABEL, "") for c in containers}
    services = {i: s for i, s in labels.items() if s in processes}
    return [
        replace(r, service=services[r.container])
        if not r.service and r.container in services
        else r
        for r in rows
    ]


def dns_names(host: Host, interface: Interface) -> list[str]:
    """The DNS names a host has on a network: its service name (Compose gives every
    service that one) and its declared aliases."""
    return [host.name, *interface.aliases]


def unlike_promised(host: Host, attached: dict[str, Attachment]) -> list[str]:
    """How a running host's attachments differ from its topology: [] when they do not."""
    wrong = []
    for interface in host.interfaces:
        if interface.network not in attached:
            wrong.append(f"off {interface.network}")
            continue
        now = attached[interface.network]
        if now.ip != interface.ip:
            wrong.append(f"{now.ip or 'no address'} on {interface.network}, not {interface.ip}")
        missing = sorted(set(dns_names(host, interface)) - set(now.aliases))
        if missing:
            wrong.append(f"no DNS name {', '.join(missing)} on {interface.network}")
    return wrong


def default_gateway(proc_net_route: str) -> str | None:
    """The default route's gateway in /proc/net/route (addresses in host byte order, hex)."""
    for line in proc_net_route.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return None


def port_is_free(host_ip: str, port: int, protocol: str) -> bool:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            # As docker-proxy does; without it a TIME_WAIT socket reads as "taken".
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip, port))
        except OSError as exc:
            # Anything else (a port below 1024 for a user, an address not here) cannot
            # tell: Docker itself binds the port, and its error says what was wrong.
            return exc.errno != errno.EADDRINUSE
    return True
