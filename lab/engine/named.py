"""Named labs: many labs side by side on one machine, each its own Compose project.

``lab up --name ada`` starts the topology as project ``socklab-class-ada`` on a /24 of
the pool and on ports of the range (``lab.engine.pool``), chosen under a lock that
every `lab` process on the machine takes, and held until Compose has created the
lab's network: the next one to choose then sees that subnet as Docker's and those
ports in its labels. What a named lab is (its subnet, its variables, its ports, who
started it, when, from which files) is written as labels on its network, and its name
on each of its containers: every process reads it from Docker, and it goes with the
lab. A later command (``lab status --name ada``) finds the lab by that label and
resolves the same files with the same variables, so it sees the same topology.

Labels come from a small Compose file the driver writes beside the user's own (an
override with labels only): it is derived from the labels, so any process can write
it again, and Compose finds nothing changed when the lab is brought up again.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from lab.backends.engine import Engine
from lab.backends.model import PROJECT_LABEL, Removed, port_is_free
from lab.engine import base_image, pool
from lab.engine.compose import Compose
from lab.errors import LabError, UsageError
from lab.names import PROJECT, label
from lab.progress import Progress
from lab.topology import Topology

PROJECT_PREFIX = f"{PROJECT}-class-"
NAME_LABEL = label("name")  # on the network and on every container: the lab's name
RECORD_LABEL = label("name.record")  # on the network: the record, as JSON
POOL_ENV = "LAB_CLASS_POOL"
PORTS_ENV = "LAB_CLASS_PORTS"
RUNTIME_ENV = "LAB_RUNTIME_DIR"
# An idle lab's cost is its healthchecks (each a `docker exec`); `lab up` does not wait
# for Docker's first one, it runs the same check itself (Engine.wait_healthy).
HEALTH = {"LAB_HEALTH_INTERVAL": "30s", "LAB_HEALTH_RETRIES": "3"}
# Variables a named lab is resolved with besides the ones chosen for it, when set
# where it was started: a later command from another shell resolves the same files.
CARRIED = ("LAB_SERVICES_IMAGE", "LAB_BIND_ADDRESS", "LAB_MEM_LIMIT", "LAB_PIDS_LIMIT")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"lab name {name!r}: lowercase letters, digits, - and _ (up to 40), "
            "starting with a letter or digit",
            "as in `lab up --name ada`",
        )
    return name


def project_of(name: str) -> str:
    return PROJECT_PREFIX + name


@dataclass(frozen=True)
class Record:
    """What a named lab is, as its network's labels say."""

    name: str
    subnet: str
    env: dict[str, str]  # the variables its files are resolved with
    ports: dict[str, int]  # "http" (or "HOST:PORT/PROTO") -> its port on the Docker host
    created: str  # ISO 8601, UTC
    owner: str  # the user who started it
    workdir: str  # where Compose runs
    files: tuple[str, ...]  # the Compose files, as absolute paths
    services: tuple[str, ...] = ()  # its containers, as the topology has them

    @property
    def project(self) -> str:
        return project_of(self.name)

    def labels(self) -> dict[str, str]:
        data = {
            "name": self.name,
            "subnet": self.subnet,
            "env": self.env,
            "ports": self.ports,
            "created": self.created,
            "owner": self.owner,
            "workdir": self.workdir,
            "files": list(self.files),
            "services": list(self.services),
        }
        return {NAME_LABEL: self.name, RECORD_LABEL: json.dumps(data, sort_keys=True)}

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Record | None:
        """The record in a network's labels; None when they hold none (or a broken one)."""
        try:
            data = json.loads(labels[RECORD_LABEL])
            return cls(
                name=str(data["name"]),
                subnet=str(data["subnet"]),
                env={str(k): str(v) for k, v in data["env"].items()},
                ports={str(k): int(v) for k, v in data["ports"].items()},
                created=str(data["created"]),
                owner=str(data["owner"]),
                workdir=str(data["workdir"]),
                files=tuple(str(f) for f in data["files"]),
                services=tuple(str(x) for x in data.get("services") or ()),
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            return None

    def age(self, now: datetime.datetime) -> float:
        """Seconds since it was started."""
        try:
            created = datetime.datetime.fromisoformat(self.created)
        except ValueError:
            return 0.0
        return max(0.0, (now - created).total_seconds())


def override(record: Record, topology: Topology) -> dict[str, Any]:
    """The Compose file that labels a named lab: the record on each network, the name on
    each container. Labels only: the topology is the user's files'."""
    return {
        "networks": {key: {"labels": record.labels()} for key in sorted(topology.networks)},
        "services": {name: {"labels": {NAME_LABEL: record.name}} for name in topology.services},
    }


def published_names(topology: Topology) -> dict[tuple[str, int, str], str]:
    """(host, container port, transport) -> the process listening there, for display."""
    names = {}
    for process in topology.processes.values():
        for port in process.ports:
            names[(process.host, port.number, port.transport)] = process.name
    return names


def age_text(seconds: float) -> str:
    """3 s, 5 min, 2 h 10 min, 3 d."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest // 60:.0f} min"
    return f"{seconds // 86400:.0f} d"


def state_text(states: Mapping[str, tuple[str, str]], expected: int) -> str:
    """A lab's state in a few words, from its containers' (status, health)."""
    if not states:
        return "no containers"
    running = [h for s, h in states.values() if s == "running"]
    if len(running) == expected == len(states):
        unhealthy = sum(h == "unhealthy" for h in running)
        return f"up ({unhealthy} unhealthy)" if unhealthy else "up"
    if not running:
        return "stopped"
    return f"partly up ({len(running)}/{expected} running)"


# --- where records and locks live --------------------------------------------------------


def runtime_dir() -> Path:
    return Path(os.environ.get(RUNTIME_ENV) or tempfile.gettempdir())


@contextlib.contextmanager
def lock() -> Iterator[None]:
    """The machine-wide lock around choosing a subnet and ports and creating the network.

    One file for every user of this Docker Engine (created writable by all), held with
    flock: the kernel releases it when its holder exits, however it exits.
    """
    path = runtime_dir() / f"{PROJECT}-class.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def override_path(record: Record) -> Path:
    folder = runtime_dir() / f"{PROJECT}-{os.getuid()}" / "named"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"{record.name}.yaml"


def forget(name: str) -> None:
    """Remove this user's labelling file of a lab that is gone."""
    folder = runtime_dir() / f"{PROJECT}-{os.getuid()}" / "named"
    (folder / f"{name}.yaml").unlink(missing_ok=True)


def write_override(record: Record, topology: Topology) -> Path:
    """Write (again) the labelling file of a named lab; the same record gives the same file."""
    path = override_path(record)
    text = "# written by `lab` for the named lab; the labels are its record\n" + yaml.safe_dump(
        override(record, topology), sort_keys=True
    )
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


# --- reading Docker ---------------------------------------------------------------------


def records(client: docker.DockerClient) -> dict[str, Record]:
    """Every named lab on this Docker Engine, by name (from its network's labels)."""
    found: dict[str, Record] = {}
    for net in client.api.networks(filters={"label": [RECORD_LABEL]}):
        record = Record.from_labels(net.get("Labels") or {})
        if record is not None and net.get("Labels", {}).get(PROJECT_LABEL) == record.project:
            found.setdefault(record.name, record)
    return found


def find(client: docker.DockerClient, name: str) -> Record | None:
    nets = client.api.networks(filters={"label": [f"{NAME_LABEL}={name}"]})
    for net in nets:
        record = Record.from_labels(net.get("Labels") or {})
        if record is not None and record.name == name:
            return record
    return None


def container_states(client: docker.DockerClient) -> dict[str, dict[str, tuple[str, str]]]:
    """name -> container name -> (status, health), for every named lab's container."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for c in client.api.containers(all=True, filters={"label": [NAME_LABEL]}):
        labels = c.get("Labels") or {}
        project = labels.get(PROJECT_LABEL, "")
        name = labels.get(NAME_LABEL, "")
        if project != project_of(name):
            continue  # a helper or anything else: only the lab's own services
        status = str(c.get("State", ""))
        text = str(c.get("Status", ""))
        health = (
            "unhealthy"
            if "(unhealthy)" in text
            else "starting"
            if "health: starting" in text
            else "healthy"
            if "(healthy)" in text
            else "none"
        )
        out.setdefault(name, {})[(c.get("Names") or ["?"])[0].lstrip("/")] = (status, health)
    return out


@dataclass(frozen=True)
class Listed:
    """One named lab as `lab ls` shows it."""

    name: str
    owner: str
    subnet: str
    ports: dict[str, int]
    state: str
    created: str
    age_s: float | None
    containers: dict[str, tuple[str, str]]  # container -> (status, health)

    @property
    def project(self) -> str:
        return project_of(self.name)


def listing(client: docker.DockerClient, now: datetime.datetime) -> list[Listed]:
    """Every named lab, by name: from its network's record and its containers' states
    (a lab whose network is gone still shows, with what its containers say)."""
    found = records(client)
    states = container_states(client)
    out = []
    for name in sorted(set(found) | set(states)):
        record = found.get(name)
        mine = states.get(name, {})
        expected = len(record.services) if record and record.services else len(mine)
        out.append(
            Listed(
                name=name,
                owner=record.owner if record else "?",
                subnet=record.subnet if record else "?",
                ports=dict(record.ports) if record else {},
                state=state_text(mine, expected),
                created=record.created if record else "",
                age_s=record.age(now) if record else None,
                containers=mine,
            )
        )
    return out


def taken_subnets(client: docker.DockerClient) -> list[IPv4Network]:
    """Every subnet of every Docker network on this engine, whoever made it."""
    texts = [
        str(config.get("Subnet", ""))
        for net in client.api.networks()
        for config in ((net.get("IPAM") or {}).get("Config") or [])
    ]
    return pool.ipv4_networks(texts)


def taken_ports(client: docker.DockerClient) -> set[int]:
    """Ports recorded by named labs (stopped ones too) and ports any container publishes."""
    taken = {port for record in records(client).values() for port in record.ports.values()}
    for c in client.api.containers():
        taken.update(int(p["PublicPort"]) for p in c.get("Ports") or [] if p.get("PublicPort"))
    return taken


# --- making one --------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    record: Record
    topology: Topology
    compose: Compose  # with the labelling file


def allocate(client: docker.DockerClient, base: Compose, name: str) -> Allocation:
    """Choose a subnet and ports for a new named lab (call it under ``lock``), and the
    Compose project that will carry them."""
    subnet = pool.free_subnet(
        pool.parse_pool(os.environ.get(POOL_ENV) or pool.POOL), taken_subnets(client)
    )
    if subnet is None:
        raise LabError(
            "no free /24 left in the named labs' subnet pool",
            f"remove some (`lab down --all`) or set {POOL_ENV} to a larger pool",
        )
    prefix = pool.prefix_of(subnet)
    carried = {k: os.environ[k] for k in CARRIED if os.environ.get(k) and k not in base.env}
    env = {**base.env, **carried, "LAB_NET_PREFIX": prefix}
    for key, value in HEALTH.items():
        env.setdefault(key, os.environ.get(key) or value)
    project = project_of(name)
    first = Compose(base.workdir, project, base.files, env).topology()
    wanted = _port_variables(base, first)
    candidates = pool.parse_ports(os.environ.get(PORTS_ENV) or f"{pool.PORTS[0]}-{pool.PORTS[-1]}")
    bind = env.get("LAB_BIND_ADDRESS") or "127.0.0.1"
    chosen = pool.free_ports(
        len(wanted),
        candidates,
        taken_ports(client),
        lambda p: port_is_free(bind, p, "tcp") and port_is_free(bind, p, "udp"),
    )
    if len(chosen) < len(wanted):
        raise LabError(
            f"no {len(wanted)} free ports left in {candidates.start}-{candidates.stop - 1}",
            f"remove some labs, or set {PORTS_ENV} to a larger range",
        )
    env.update({variable: str(port) for (variable, _), port in zip(wanted, chosen, strict=True)})
    files = tuple(str(p.resolve()) for p in base.file_paths())
    plain = Compose(base.workdir, project, tuple(Path(f) for f in files), env)
    topology = plain.topology()
    _check_inside(topology, subnet)
    record = Record(
        name=name,
        subnet=str(subnet),
        env=env,
        ports={label: port for (_, label), port in zip(wanted, chosen, strict=True)},
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        owner=_user(),
        workdir=str(base.workdir),
        files=files,
        services=tuple(topology.services),
    )
    return Allocation(record, topology, labelled(plain, record, topology))


def _port_variables(base: Compose, topology: Topology) -> list[tuple[str, str]]:
    """(variable, label) for each published port: the variable that sets it, in the files
    as written, and what listens behind it. A port fixed in the files is refused: two
    labs cannot both have it."""
    names = published_names(topology)
    wanted: list[tuple[str, str]] = []
    for host in topology.hosts.values():
        for p in host.published:
            variable = base.port_hint(p.container_port, p.protocol)
            label = names.get((host.name, p.container_port, p.protocol)) or (
                f"{host.name}:{p.container_port}"
            )
            if label.startswith(f"{host.name}:"):
                label += f"/{p.protocol}"
            if variable:
                wanted.append((variable, label))
            elif p.host_port is not None:
                raise UsageError(
                    f"host {host.name} publishes port {p.host_port} fixed in the Compose files: "
                    "two named labs cannot both have it",
                    "publish it from a variable, as compose.yaml does (${LAB_HTTP_PORT-8000}:80)",
                )
    return wanted


def _check_inside(topology: Topology, subnet: IPv4Network) -> None:
    for network in topology.networks.values():
        mine = pool.ipv4_networks([network.subnet])
        if not mine or not mine[0].subnet_of(subnet):
            raise UsageError(
                f"network {network.name} of this topology is {network.subnet}, fixed in its "
                f"files: a named lab needs its addresses from LAB_NET_PREFIX ({subnet} here)",
                "write its subnet and addresses as ${LAB_NET_PREFIX:-10.203.0}.X, as "
                "compose.yaml does",
            )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def labelled(plain: Compose, record: Record, topology: Topology) -> Compose:
    """The named lab's Compose project: its files, then the one that labels it."""
    path = write_override(record, topology)
    return Compose(plain.workdir, record.project, (*plain.files, path), record.env)


def compose_of(record: Record) -> tuple[Compose, Topology]:
    """A recorded lab's Compose project, and its topology (resolved as it was at its start)."""
    plain = Compose(
        Path(record.workdir), record.project, tuple(Path(f) for f in record.files), record.env
    )
    topology = plain.topology()
    return labelled(plain, record, topology), topology


# --- removing -----------------------------------------------------------------------------


def projects(client: docker.DockerClient) -> list[str]:
    """Every project holding a named lab's network or container (half-made ones too)."""
    found = set()
    for net in client.api.networks(filters={"label": [NAME_LABEL]}):
        labels = net.get("Labels") or {}
        if labels.get(PROJECT_LABEL) == project_of(labels.get(NAME_LABEL, "")):
            found.add(labels[PROJECT_LABEL])
    for c in client.api.containers(all=True, filters={"label": [NAME_LABEL]}):
        labels = c.get("Labels") or {}
        if labels.get(PROJECT_LABEL) == project_of(labels.get(NAME_LABEL, "")):
            found.add(labels[PROJECT_LABEL])
    return sorted(found)


def sweep(client: docker.DockerClient, project: str) -> Removed:
    """Remove every container (helpers too), network and volume of one named lab's project.

    Only projects found through the named labs' own label come here, so nothing of
    another lab, or of anyone else, is touched."""
    if not project.startswith(PROJECT_PREFIX):
        raise ValueError(f"{project} is not a named lab's project")
    label = {"label": [f"{PROJECT_LABEL}={project}"]}
    containers, networks, volumes = [], [], []
    for c in client.api.containers(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(c["Id"], force=True, v=True)
            containers.append((c.get("Names") or ["?"])[0].lstrip("/"))
    for n in client.api.networks(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_network(n["Id"])
            networks.append(str(n.get("Name")))
    for v in (client.api.volumes(filters=label) or {}).get("Volumes") or []:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_volume(v["Name"], force=True)
            volumes.append(str(v["Name"]))
    return Removed(sorted(containers), sorted(networks), sorted(volumes))


# --- starting one ----------------------------------------------------------------------


def up_new(
    placeholder: Engine,
    base: Compose,
    name: str,
    progress: Progress,
    timeout: float,
    then: Callable[[Engine], None],
    build: bool = True,
) -> tuple[Engine, base_image.Plan]:
    """Start a named lab that does not exist yet; the Engine it is, and the base image.

    The image is built first (outside the lock: it is shared), then the subnet and ports
    are chosen and the project created under the lock, then it is started and awaited
    outside it. A failure or Ctrl-C from the choice on removes what was made.
    """
    chosen = placeholder.prepare(progress, build)
    client = placeholder.client
    with lock():
        if find(client, name) is not None:
            raise UsageError(f"a lab named {name} was started meanwhile", "use it, or another name")
        progress("choosing a subnet and ports")
        made = allocate(client, base.with_env(base_image.ENV_KEY, chosen.image), name)
        stack = Engine(client, made.topology, made.compose, Path(made.record.workdir))
        with stack.undo_on_failure():
            progress(f"creating {made.record.project} on {made.record.subnet}")
            stack.compose.create()
    with stack.undo_on_failure():
        stack.start(progress, timeout, lambda: then(stack))
    return stack, chosen
