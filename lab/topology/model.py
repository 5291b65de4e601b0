"""The lab's topology: networks, hosts that own addresses, processes that own ports.

Built from the Compose model *as Compose resolved it* (``docker compose config``:
variables, ``.env``, overrides, ``-f``, ``COMPOSE_FILE``, anchors), never from the
raw YAML. The lab's own words are Compose labels:

  on a host (a service with networks of its own):
    socklab.role: client                    the workbench experiments send from
    socklab.routes: "10.88.2.0/24 via 10.88.1.2; ..."  routes added at `lab up`
    socklab.link: "loss 10% delay 50ms"     an impairment put on its link at `lab up`
    socklab.machine: m1                     the machine it runs on, in a lab across several
                                        (its processes go with it: docs/scale-out.md)
  on a process (``network_mode: service:HOST`` and ``pid: service:HOST``):
    socklab.ports: "8080/tcp shout, 9000/udp echo"   what it listens on, and speaks

and one top-level extension, ``x-socklab: {shortcuts: {tcp: tcp-shout}}``, for short
names ``lab send`` accepts. Everything here is pure: it is tested on recorded
``docker compose config`` output.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lab.errors import TopologyError, UsageError
from lab.names import EXTENSION, OLD_EXTENSION, OLD_PREFIX, PREFIX, label

TRANSPORTS = ("tcp", "udp")
# What a process speaks on a port, so that `send`, `fuzz` and the failure matrix
# know how to talk to it and how to recognise an answer:
PROTOCOLS = {
    "shout": "text in, the same text uppercased back (per datagram, or as a stream)",
    "echo": "bytes in, the same bytes back",
    "http": "HTTP/1.1 requests and responses",
    "resp": "the Redis protocol: commands and replies",
    "raw": "anything: the lab sends bytes and shows whatever comes back",
}
CLIENT = "client"
HOST = "host"


@dataclass(frozen=True)
class Port:
    """A port a process listens on (TCP) or is bound to (UDP), and what it speaks there."""

    number: int
    transport: str = "tcp"
    protocol: str = "raw"

    @classmethod
    def parse(cls, text: str, where: str = "") -> Port:
        """``8080/udp shout``, ``80/tcp http``, ``9000`` (tcp, raw)."""
        words = text.split()
        if not words or len(words) > 2:
            raise TopologyError(f"{where}port {text!r}: expected PORT/TRANSPORT [PROTOCOL]")
        number, _, transport = words[0].partition("/")
        transport = transport or "tcp"
        protocol = words[1] if len(words) == 2 else "raw"
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise TopologyError(f"{where}port {text!r}: {number!r} is not a port number")
        if transport not in TRANSPORTS:
            raise TopologyError(f"{where}port {text!r}: transport must be tcp or udp")
        if protocol not in PROTOCOLS:
            raise TopologyError(
                f"{where}port {text!r}: unknown protocol {protocol!r}",
                f"one of: {', '.join(PROTOCOLS)}",
            )
        return cls(int(number), transport, protocol)

    def __str__(self) -> str:
        return f"{self.number}/{self.transport} {self.protocol}"


@dataclass(frozen=True)
class Process:
    """A container that joined a host's network and PID namespaces: a process on that host."""

    name: str
    host: str
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class Interface:
    """A host's attachment to one network: its address there and its DNS names."""

    network: str
    ip: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublishedPort:
    """A host's port published on the Docker host."""

    host_ip: str
    host_port: int | None  # None: Docker picks a free port at start
    container_port: int
    protocol: str  # tcp or udp


@dataclass(frozen=True)
class Route:
    destination: str  # a network, as CIDR
    via: str  # the next hop's address

    def __str__(self) -> str:
        return f"{self.destination} via {self.via}"


@dataclass(frozen=True)
class Host:
    """A container that owns addresses: its network namespace is the host's kernel."""

    name: str
    role: str  # "host", or "client" for the workbench
    interfaces: tuple[Interface, ...]
    published: tuple[PublishedPort, ...] = ()
    processes: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    link: str = ""  # an impairment declared in the topology (socklab.link), "" for none
    forwarding: bool = False  # net.ipv4.ip_forward=1: it routes between its networks
    machine: str = ""  # socklab.machine: where it runs in a lab across machines ("" = spread)

    @property
    def ip(self) -> str:
        """Its address on its first network (its only one, unless it is a router)."""
        return self.interfaces[0].ip

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(i.network for i in self.interfaces)

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for i in self.interfaces for a in i.aliases))

    def ip_on(self, network: str) -> str:
        for interface in self.interfaces:
            if interface.network == network:
                return interface.ip
        raise TopologyError(f"host {self.name} is not on network {network}")


@dataclass(frozen=True)
class Network:
    name: str  # its key in the Compose file
    docker_name: str  # as Docker knows it: usually PROJECT_KEY
    subnet: str


@dataclass(frozen=True)
class Endpoint:
    """Somewhere a message can be sent: a port on a host, and the process behind it if known."""

    host: str
    port: Port
    process: str = ""  # "" when no process declares this port

    @property
    def label(self) -> str:
        return self.process or f"{self.host}:{self.port.number}/{self.port.transport}"


@dataclass(frozen=True)
class Build:
    """An image Compose builds for a service (its ``build:``), as Compose resolved it."""

    service: str
    image: str  # the tag it gets: the service's ``image:``, or Compose's own name for it
    context: str  # an absolute folder (Compose resolves it), or a URL
    dockerfile: str
    args: dict[str, str] = field(default_factory=dict)
    # What the lab's fingerprint does not follow (target, an inline Dockerfile, other
    # contexts, secrets, ssh): with any of these, `lab up` always lets Compose build.
    opaque: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    project: str
    networks: dict[str, Network]
    hosts: dict[str, Host]
    processes: dict[str, Process]
    shortcuts: dict[str, str] = field(default_factory=dict)
    builds: tuple[Build, ...] = ()
    # host -> the machine it runs on, in a lab across machines ({} on one engine)
    machines: dict[str, str] = field(default_factory=dict)

    # --- naming -------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        """Every Compose service of the lab: hosts first, then processes."""
        return [*self.hosts, *self.processes]

    @property
    def network(self) -> str:
        """The first network (the only one in most labs)."""
        return next(iter(self.networks))

    @property
    def subnet(self) -> str:
        return self.networks[self.network].subnet

    def host_of(self, service: str) -> Host:
        """The host a service is (a host) or runs on (a process)."""
        if service in self.hosts:
            return self.hosts[service]
        if service in self.processes:
            return self.hosts[self.processes[service].host]
        raise UsageError(f"no host or process named {service!r}", f"known: {self.known()}")

    def known(self) -> str:
        return ", ".join(self.services)

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            raise UsageError(f"{name} is not a host", f"one of: {', '.join(self.hosts)}")
        return self.hosts[name]

    @property
    def client(self) -> Host:
        for host in self.hosts.values():
            if host.role == CLIENT:
                return host
        raise TopologyError(
            "the topology has no client host", "label one host `socklab.role: client`"
        )

    def name_of(self, ip: str) -> str:
        """The host that owns an address, or the address itself."""
        for host in self.hosts.values():
            if any(i.ip == ip for i in host.interfaces):
                return host.name
        return ip

    # --- the service catalogue ------------------------------------------------

    def endpoints(self) -> list[Endpoint]:
        """Every port a process declares, in file order: what can be sent to, fuzzed, failed."""
        return [Endpoint(p.host, port, p.name) for p in self.processes.values() for port in p.ports]

    def endpoint(self, target: str) -> Endpoint:
        """Where ``target`` points: a process (``db``), a process's port (``db:6379``),
        a host's port (``shouthost:8080/udp``, ``10.203.0.20:8080``), or a shortcut."""
        target = self.shortcuts.get(target, target)
        name, _, rest = target.partition(":")
        number_text, _, transport = rest.partition("/")
        if rest and not number_text.isdigit():
            raise UsageError(f"{target!r}: expected NAME[:PORT][/tcp|udp]")
        number = int(number_text) if number_text else None
        if transport and transport not in TRANSPORTS:
            raise UsageError(f"{target!r}: the transport is tcp or udp")

        def fits(port: Port) -> bool:
            return (number is None or port.number == number) and (
                not transport or port.transport == transport
            )

        if name in self.processes:
            process = self.processes[name]
            ports = [p for p in process.ports if fits(p)]
            if len(ports) == 1:
                return Endpoint(process.host, ports[0], name)
            declared = ", ".join(str(p) for p in process.ports) or "none"
            if not ports and number is not None:  # a port it does not declare: send raw
                return Endpoint(process.host, Port(number, transport or "tcp"), name)
            raise UsageError(
                f"{name} listens on {declared}" + ("; name one port" if ports else ""),
                f"as in {name}:{process.ports[0].number}" if process.ports else "",
            )
        host = self._host_named(name)
        if number is None:
            raise UsageError(f"{target!r} is a host: add a port, as in {name}:80")
        for endpoint in self.endpoints():
            if endpoint.host == host.name and fits(endpoint.port):
                return endpoint
        return Endpoint(host.name, Port(number, transport or "tcp"))

    def _host_named(self, name: str) -> Host:
        for host in self.hosts.values():
            if name == host.name or name in host.aliases or name in (i.ip for i in host.interfaces):
                return host
        raise UsageError(
            f"no process, host or address {name!r} in this lab", f"known: {self.known()}"
        )


# --- reading Compose's resolved model --------------------------------------------------


def from_config(config: Mapping[str, Any]) -> Topology:
    """The topology in ``docker compose config --format json`` output."""
    services = config.get("services")
    if not isinstance(services, Mapping) or not services:
        raise TopologyError("the Compose files define no services")
    project = str(config.get("name") or "")
    networks = {
        key: Network(
            key,
            str((spec or {}).get("name") or f"{project}_{key}"),
            _subnet(key, spec or {}),
        )
        for key, spec in (config.get("networks") or {}).items()
    }
    hosts: dict[str, Host] = {}
    processes: dict[str, Process] = {}
    for name, spec in services.items():
        labels = spec.get("labels") or {}
        _refuse_old_words(name, labels)
        mode = str(spec.get("network_mode") or "")
        if mode.startswith("service:"):
            processes[name] = _process(name, spec, labels, mode.removeprefix("service:"))
        elif mode:
            raise TopologyError(
                f"service {name} has network_mode {mode!r}",
                "a lab host needs networks of its own; a process uses service:HOST",
            )
        else:
            hosts[name] = _host(name, spec, labels, networks)
    for process in processes.values():
        if process.host not in hosts:
            raise TopologyError(
                f"process {process.name} joins {process.host!r}, which is not a host"
            )
        owner = hosts[process.host]
        hosts[process.host] = replace(owner, processes=(*owner.processes, process.name))
    if OLD_EXTENSION in config and EXTENSION not in config:
        raise TopologyError(
            f"the Compose files use {OLD_EXTENSION}, the lab's old extension",
            f"rename it to {EXTENSION}",
        )
    shortcuts = dict((config.get(EXTENSION) or {}).get("shortcuts") or {})
    for short, target in shortcuts.items():
        if target not in processes:
            raise TopologyError(f"{EXTENSION} shortcut {short!r} names no process ({target!r})")
    builds = tuple(
        _build(name, spec, project) for name, spec in services.items() if spec.get("build")
    )
    topology = Topology(project, networks, hosts, processes, shortcuts, builds)
    _check_addresses(topology)
    return topology


OPAQUE_BUILD_KEYS = ("target", "dockerfile_inline", "additional_contexts", "secrets", "ssh")


def _build(name: str, spec: Mapping[str, Any], project: str) -> Build:
    build = spec["build"] if isinstance(spec["build"], Mapping) else {"context": spec["build"]}
    return Build(
        name,
        str(spec.get("image") or f"{project}-{name}"),
        str(build.get("context") or "."),
        str(build.get("dockerfile") or "Dockerfile"),
        {str(k): str(v) for k, v in (build.get("args") or {}).items()},
        tuple(k for k in OPAQUE_BUILD_KEYS if build.get(k)),
    )


def _subnet(key: str, spec: Mapping[str, Any]) -> str:
    configs = (spec.get("ipam") or {}).get("config") or []
    subnet = next((str(c["subnet"]) for c in configs if c.get("subnet")), "")
    if not subnet:
        raise TopologyError(
            f"network {key} has no subnet",
            "give it ipam: {config: [{subnet: ...}]}, so hosts can keep fixed addresses",
        )
    return subnet


def _refuse_old_words(service: str, labels: Mapping[str, str]) -> None:
    """A label under the old prefix would be ignored in silence: say what to rename."""
    for key in labels:
        word = key.removeprefix(OLD_PREFIX)
        if key.startswith(OLD_PREFIX) and word in _WORDS:
            raise TopologyError(
                f"service {service}: label {key} is the lab's old name for {PREFIX}{word}",
                f"rename every {OLD_PREFIX}* label to {PREFIX}*",
            )


_WORDS = ("role", "routes", "link", "machine", "ports")


def _process(name: str, spec: Mapping[str, Any], labels: Mapping[str, str], host: str) -> Process:
    if labels.get(label("machine")):
        raise TopologyError(
            f"process {name} has socklab.machine: a process runs where its host {host} runs",
            f"put socklab.machine on {host}",
        )
    if spec.get("pid") != f"service:{host}":
        raise TopologyError(
            f"process {name} joins {host}'s network but not its PID namespace",
            f"add `pid: service:{host}` (the port table finds owners by their pids)",
        )
    words = [w.strip() for w in str(labels.get(label("ports"), "")).split(",") if w.strip()]
    return Process(name, host, tuple(Port.parse(w, f"{name}: ") for w in words))


def _host(
    name: str, spec: Mapping[str, Any], labels: Mapping[str, str], networks: dict[str, Network]
) -> Host:
    role = str(labels.get(label("role"), HOST))
    if role not in (HOST, CLIENT):
        raise TopologyError(f"host {name}: socklab.role is {role!r}", "use client, or leave it out")
    interfaces = []
    for key, attachment in (spec.get("networks") or {}).items():
        if key not in networks:
            raise TopologyError(f"host {name} is on network {key}, which is not defined")
        ip = (attachment or {}).get("ipv4_address")
        if not ip:
            raise TopologyError(
                f"host {name} needs a fixed ipv4_address on network {key}",
                "the lab brings a host back on the same address after a fault",
            )
        interfaces.append(Interface(key, str(ip), tuple((attachment or {}).get("aliases") or ())))
    if not interfaces:
        raise TopologyError(f"host {name} is on no network")
    link = str(labels.get(label("link"), "")).strip()
    if link:
        from lab.chaos.impairment import parse  # pure; validates the words now, not at `up`

        try:
            parse(link.split())
        except UsageError as exc:
            raise TopologyError(f"host {name}: socklab.link {link!r}: {exc.what}") from None
    sysctls = spec.get("sysctls") or {}
    return Host(
        name=name,
        role=role,
        interfaces=tuple(interfaces),
        published=tuple(_published(name, p) for p in spec.get("ports") or ()),
        routes=tuple(_routes(name, str(labels.get(label("routes"), "")))),
        link=link,
        forwarding=str(sysctls.get("net.ipv4.ip_forward", "0")) == "1",
        machine=str(labels.get(label("machine"), "")).strip(),
    )


def _published(host: str, port: Mapping[str, Any]) -> PublishedPort:
    published = str(port.get("published") or "")
    if "-" in published:
        raise TopologyError(f"host {host}: a published range ({published}) is not supported")
    return PublishedPort(
        host_ip=str(port.get("host_ip") or "0.0.0.0"),
        host_port=int(published) if published else None,
        container_port=int(port["target"]),
        protocol=str(port.get("protocol") or "tcp"),
    )


def _routes(host: str, text: str) -> Iterable[Route]:
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        words = part.split()
        if len(words) != 3 or words[1] != "via":
            raise TopologyError(f"host {host}: route {part!r}: expected NETWORK via ADDRESS")
        try:
            ipaddress.ip_network(words[0])
            ipaddress.ip_address(words[2])
        except ValueError as exc:
            raise TopologyError(f"host {host}: route {part!r}: {exc}") from None
        yield Route(words[0], words[2])


def _check_addresses(topology: Topology) -> None:
    seen: dict[str, str] = {}
    for host in topology.hosts.values():
        for interface in host.interfaces:
            subnet = ipaddress.ip_network(topology.networks[interface.network].subnet)
            if ipaddress.ip_address(interface.ip) not in subnet:
                raise TopologyError(
                    f"host {host.name}: {interface.ip} is outside {interface.network} ({subnet})"
                )
            if interface.ip in seen:
                raise TopologyError(
                    f"hosts {seen[interface.ip]} and {host.name} both claim {interface.ip}"
                )
            seen[interface.ip] = host.name
