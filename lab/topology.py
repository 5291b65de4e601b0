"""The lab's topology, read from compose.yaml: hosts, their IPs, their processes, published ports.

compose.yaml is the single source of truth; this module reads it with PyYAML
and applies Compose's variable interpolation (``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``$$``) with the same precedence Compose uses: the shell's
environment over the project's ``.env`` file over the defaults in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lab.errors import TopologyError

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand Compose-style variables in one string."""

    def expand(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op is None:
            return value or ""
        unset_or_empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset_or_empty else str(value)
        if op.endswith("+"):
            return "" if unset_or_empty else arg
        if unset_or_empty:  # ? and :?
            raise TopologyError(f"variable {name} is required: {arg or 'not set'}")
        return str(value)

    return _VARIABLE.sub(expand, text)


def variables_in(text: str) -> list[str]:
    return [
        m.group("braced") or m.group("bare")
        for m in _VARIABLE.finditer(text)
        if not m.group("escaped")
    ]


def parse_env_file(text: str) -> dict[str, str]:
    """The KEY=VALUE lines of a Compose .env file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key] = value
    return env


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the Docker host."""

    host_ip: str
    host_port: int | None  # None: Docker picks a free port at start
    container_port: int
    protocol: str  # tcp or udp
    variable: str  # the environment variable that sets host_port

    @classmethod
    def parse(cls, raw: str, env: Mapping[str, str]) -> PublishedPort:
        """Parse the short syntax 'IP:HOST:CONTAINER[/PROTO]', as written in compose.yaml."""
        names = variables_in(raw.rsplit(":", 1)[0])
        text = interpolate(raw, env)
        spec, _, protocol = text.partition("/")
        parts = spec.split(":")
        if len(parts) != 3:
            raise TopologyError(f"published port {raw!r}: expected IP:HOST_PORT:CONTAINER_PORT")
        host_ip, host_port, container_port = parts
        try:
            return cls(
                host_ip=host_ip,
                host_port=int(host_port) if host_port else None,
                container_port=int(container_port),
                protocol=protocol or "tcp",
                variable=names[-1] if names else "",
            )
        except ValueError:
            raise TopologyError(f"published port {raw!r} is not a number ({text!r})") from None


@dataclass(frozen=True)
class Process:
    """A service process: a container that joined a host's namespaces."""

    name: str
    host: str


@dataclass(frozen=True)
class Host:
    """A container that owns an IP address on the lab network."""

    name: str
    ip: str
    role: str  # "host" or "client"
    aliases: tuple[str, ...]
    published: tuple[PublishedPort, ...]
    processes: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    project: str
    network: str
    subnet: str
    hosts: dict[str, Host]
    processes: dict[str, Process]

    @property
    def services(self) -> list[str]:
        """Every Compose service: hosts first, then processes."""
        return [*self.hosts, *self.processes]

    def host_of(self, service: str) -> Host:
        if service in self.hosts:
            return self.hosts[service]
        if service in self.processes:
            return self.hosts[self.processes[service].host]
        raise TopologyError(f"no service named {service!r} (known: {', '.join(self.services)})")

    @property
    def client(self) -> Host:
        for host in self.hosts.values():
            if host.role == "client":
                return host
        raise TopologyError("compose.yaml has no host labelled lab.role: client")


def load(project_dir: Path, environ: Mapping[str, str], project: str | None = None) -> Topology:
    """Read ``project_dir/compose.yaml`` with ``project_dir/.env`` under ``environ``."""
    path = project_dir / "compose.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path} is not valid YAML: {exc}") from None
    env_file = project_dir / ".env"
    env = {**(parse_env_file(env_file.read_text()) if env_file.exists() else {}), **environ}
    return from_document(document, env, project)


def from_document(document: Any, env: Mapping[str, str], project: str | None = None) -> Topology:
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise TopologyError("compose.yaml has no services")
    name = project or env.get("COMPOSE_PROJECT_NAME") or document.get("name") or "netlab"
    networks = document.get("networks") or {}
    if len(networks) != 1:
        raise TopologyError("compose.yaml must define exactly one lab network")
    network, net_spec = next(iter(networks.items()))
    subnet = interpolate(str(net_spec["ipam"]["config"][0]["subnet"]), env)

    hosts: dict[str, Host] = {}
    processes: dict[str, Process] = {}
    for service, spec in document["services"].items():
        labels = spec.get("labels") or {}
        role = labels.get("lab.role")
        if role in ("host", "client"):
            attachment = (spec.get("networks") or {}).get(network) or {}
            if "ipv4_address" not in attachment:
                raise TopologyError(f"host {service} needs a fixed ipv4_address on {network}")
            hosts[service] = Host(
                name=service,
                ip=interpolate(str(attachment["ipv4_address"]), env),
                role=role,
                aliases=tuple(attachment.get("aliases") or ()),
                published=tuple(PublishedPort.parse(p, env) for p in spec.get("ports") or ()),
                processes=(),
            )
        elif role == "process":
            host = str(labels.get("lab.host", ""))
            if spec.get("network_mode") != f"service:{host}":
                raise TopologyError(f"process {service} must use network_mode service:{host}")
            processes[service] = Process(service, host)
        else:
            raise TopologyError(f"service {service} has no lab.role label (host, client, process)")

    for process in processes.values():
        if process.host not in hosts:
            raise TopologyError(f"process {process.name} names unknown host {process.host!r}")
        owner = hosts[process.host]
        hosts[process.host] = replace(owner, processes=(*owner.processes, process.name))
    return Topology(name, network, subnet, hosts, processes)
