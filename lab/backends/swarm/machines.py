"""A test cluster on one machine: N containers, each running its own Docker Engine from
Debian's ``docker.io``, joined into one Docker Swarm (``lab cluster make N``).

Each "machine" is a container on an underlay bridge (``socklab-cluster-underlay``,
10.231.0.0/24) at a fixed address; its engine answers the driver on a unix socket
bind-mounted to ``/tmp/socklab-cluster/<machine>/docker.sock``, so the lab reaches it
exactly as it reaches any engine (a ``unix://`` URL), with no TCP port opened. The
flags are the ones ../shared/NOTES.md found necessary here: every capability but
CAP_SYS_RESOURCE (which this machine's root lacks, so ``--privileged`` fails), no
seccomp or AppArmor profile, /dev/fuse, a tmpfs /run, the host's cgroups, and vfs
storage (no overlay filesystem on top of another). Its /var/lib/docker is a volume:
vfs copies every layer, and a volume is native disk rather than the container's
own layered root.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.tls
import docker.types
import docker.utils

from lab.backends.swarm.placement import Machine
from lab.engine import base_image
from lab.engine.docker_client import API_TIMEOUT
from lab.errors import LabError, TimedOut, UsageError
from lab.interrupts import ctrl_c_ignored
from lab.names import PROJECT, label
from lab.progress import Progress
from lab.waiting import wait_until

PREFIX = f"{PROJECT}-cluster"
LABEL = label("cluster.test")  # on every container, network and volume the test cluster owns
MACHINE_KEY = label("cluster.test.machine")
UNDERLAY = f"{PREFIX}-underlay"
UNDERLAY_SUBNET = "10.231.0.0/24"
# Bind-mounted into every machine at the same path, as a shared mount: each engine's
# socket is here (SOCKETS/<machine>/docker.sock), and so is SHARED, where a mount made
# on this machine later (db-kill's volatile disk) reaches the machines' engines too.
SOCKETS = Path(f"/tmp/{PROJECT}-cluster")
SHARED = SOCKETS / "shared"
SWARM_PORT = 2377
MAX_MACHINES = 9
ENGINE_TIMEOUT = 90.0  # a fresh dockerd on vfs answers in a few seconds; CI is slower
MOUNT_TIMEOUT = 30.0  # a local bind mount is instant; a hung one must not hang the driver
PACKAGES = (
    "docker.io", "iproute2", "iptables", "ca-certificates", "procps", "tcpdump", "fuse-overlayfs",
)  # fmt: skip
# fuse-overlayfs shares layers between images and containers (checked here: an image loads
# in 10 s, a container starts in under one); vfs copies every layer, and works everywhere.
STORAGE_ENV = "LAB_CLUSTER_STORAGE"
STORAGE_DEFAULT = "fuse-overlayfs"
REPOSITORY = f"{PREFIX}-machine"
# The capabilities a nested engine needs are all of them; this machine's root lacks
# CAP_SYS_RESOURCE, so asking for it (as --privileged does) fails.
DROPPED = ["SYS_RESOURCE"]


def image_tag(packages: tuple[str, ...] = PACKAGES) -> str:
    """Changes with the package list, so a stale machine image is never reused."""
    digest = hashlib.sha256(" ".join(sorted(packages)).encode()).hexdigest()[:8]
    return f"{REPOSITORY}:{base_image.SUITE}-{digest}"


def storage() -> str:
    return os.environ.get(STORAGE_ENV) or STORAGE_DEFAULT


def names(count: int) -> list[str]:
    if not 1 <= count <= MAX_MACHINES:
        raise UsageError(f"a test cluster has 1 to {MAX_MACHINES} machines, not {count}")
    return [f"m{i}" for i in range(1, count + 1)]


def address(name: str) -> str:
    """A machine's fixed address on the underlay: m1 is 10.231.0.11."""
    return f"10.231.0.{10 + int(name.removeprefix('m'))}"


def container_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def url(name: str) -> str:
    return f"unix://{SOCKETS / name / 'docker.sock'}"


def connect(machine: Machine, timeout: float = API_TIMEOUT) -> docker.DockerClient:
    """A client of one machine's engine (ssh:// through the ssh command, as the docker
    CLI does, so the user's ssh configuration and keys apply; tcp:// with TLS when
    ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` say so, as for the docker CLI)."""
    tls: bool | docker.tls.TLSConfig = False
    if machine.url.startswith("tcp://"):
        tls = docker.utils.kwargs_from_env().get("tls") or False
    return docker.DockerClient(
        base_url=machine.url,
        timeout=int(timeout),
        use_ssh_client=machine.url.startswith("ssh://"),
        tls=tls,
    )


@dataclass(frozen=True)
class MachineStatus:
    name: str
    address: str
    state: str  # the container's: running, exited...
    swarm: str  # manager, worker, inactive, or "no answer"
    url: str


def found(client: docker.DockerClient) -> list[Machine]:
    """The test cluster's machines, as their containers' labels say (m1 first)."""
    rows = client.api.containers(all=True, filters={"label": f"{LABEL}={MACHINE_KEY}"})
    machines = {str(r["Labels"][MACHINE_KEY + ".name"]) for r in rows}
    return [Machine(n, url(n)) for n in sorted(machines, key=lambda n: int(n[1:]))]


def status(client: docker.DockerClient) -> list[MachineStatus]:
    report = []
    for machine in found(client):
        try:
            state = str(client.containers.get(container_name(machine.name)).status)
        except docker.errors.NotFound:
            state = "gone"
        role = "no answer"
        if state == "running":
            with contextlib.suppress(docker.errors.DockerException, OSError):
                info = connect(machine, timeout=10).info()["Swarm"]
                role = (
                    "manager"
                    if info.get("ControlAvailable")
                    else str(info.get("LocalNodeState", "?")).replace("active", "worker")
                )
        report.append(MachineStatus(machine.name, address(machine.name), state, role, machine.url))
    return report


def make(client: docker.DockerClient, count: int, progress: Progress) -> list[Machine]:
    """N machines in one swarm (m1 its manager); an existing whole one is kept as it is.

    Interrupted or failed part-way, everything made so far is removed.
    """
    from lab.engine.docker_client import beside_engine

    # The machines' sockets come out through a shared mount on this machine: root's
    # alone, and only where the engine runs (said before a minute of debootstrap).
    if os.geteuid() != 0 or not beside_engine(client):
        raise LabError(
            "the test cluster mounts its engines' sockets on the Docker host: it is made "
            "as root, on the machine the engine runs on",
            "run `socklab cluster make` there as root, or join real machines (--cluster m1=URL)",
        )
    wanted = names(count)
    existing = [m.name for m in found(client)]
    if existing:
        if existing == wanted and all(s.swarm in ("manager", "worker") for s in status(client)):
            progress(f"the test cluster of {count} machines is already there")
            return found(client)
        raise UsageError(
            f"a test cluster of {len(existing)} machines is there already",
            "remove it first with `lab cluster remove`",
        )
    try:
        tag = ensure_image(client, progress)
        underlay(client)
        shared_mount()
        for name in wanted:
            progress(f"starting machine {name} at {address(name)} (dockerd, {storage()} storage)")
            start_machine(client, name, tag)
        engines = {name: wait_engine(name, progress) for name in wanted}
        form_swarm(engines, progress)
    except BaseException:
        with ctrl_c_ignored():
            remove(client, progress)
        raise
    return found(client)


def ensure_image(client: docker.DockerClient, progress: Progress) -> str:
    tag = image_tag()
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        base_image.build_debian_image(client, tag, PACKAGES, ['CMD ["dockerd"]'], progress)
    return tag


def underlay(client: docker.DockerClient) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.networks.get(UNDERLAY)
        return
    client.networks.create(
        UNDERLAY,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=UNDERLAY_SUBNET)]),
        labels={LABEL: "underlay"},
    )


def shared_mount() -> None:
    """SOCKETS as a mount of its own, shared: what is mounted under it later propagates
    into every machine (each binds it ``rslave``)."""
    SOCKETS.mkdir(parents=True, exist_ok=True)
    if not mounted(SOCKETS):
        _mount(["--bind", str(SOCKETS), str(SOCKETS)])
    _mount(["--make-rshared", str(SOCKETS)])


def mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point: by /proc/self/mountinfo, since a bind mount of
    a folder on its own file system is one that os.path.ismount cannot see."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    return any(len(f := line.split()) > 4 and f[4] == str(path) for line in lines)


def _mount(args: list[str]) -> None:
    try:
        done = subprocess.run(
            ["mount", *args], capture_output=True, text=True, check=False, timeout=MOUNT_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise TimedOut(f"`mount {' '.join(args)}`", MOUNT_TIMEOUT, "run as root") from None
    if done.returncode != 0:
        raise LabError(f"mount {' '.join(args)} failed: {done.stderr.strip()}", "run as root")


def start_machine(client: docker.DockerClient, name: str, tag: str) -> None:
    sockets = SOCKETS / name
    shutil.rmtree(sockets, ignore_errors=True)  # a stale socket file from a killed run
    sockets.mkdir(parents=True)
    labels = {LABEL: MACHINE_KEY, MACHINE_KEY + ".name": name}
    volume = client.volumes.create(f"{container_name(name)}-data", labels=labels)
    container = client.containers.create(
        tag,
        [
            "dockerd",
            f"--storage-driver={storage()}",
            # Its containers' cgroups in a tree of their own (the host's cgroups are
            # shared with it), which `remove` takes away: under /docker they outlived it.
            f"--cgroup-parent={cgroup_parent(name)}",
            "-H",
            url(name),
            "--log-level=warn",
        ],
        name=container_name(name),
        hostname=name,
        detach=True,
        init=True,
        cap_add=["ALL"],
        cap_drop=DROPPED,
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        devices=["/dev/fuse:/dev/fuse:rwm"],
        tmpfs={"/run": ""},
        volumes={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            str(SOCKETS): {"bind": str(SOCKETS), "mode": "rw,rslave"},
            str(volume.name): {"bind": "/var/lib/docker", "mode": "rw"},
        },
        network=UNDERLAY,
        labels=labels,
    )
    # Its fixed address: connected before the start, so dockerd sees it from the first moment.
    client.api.disconnect_container_from_network(str(container.id), UNDERLAY)
    client.api.connect_container_to_network(str(container.id), UNDERLAY, ipv4_address=address(name))
    container.start()


def wait_engine(name: str, progress: Progress) -> docker.DockerClient:
    """A client of the machine's engine, once it answers (the SDK asks for the API
    version when it is made, so it is made only once the socket answers)."""
    progress(f"waiting for the engine of {name}")

    def answers() -> docker.DockerClient | None:
        try:
            engine = connect(Machine(name, url(name)))
            return engine if engine.ping() else None
        except (docker.errors.DockerException, OSError):
            return None

    try:
        return wait_until(answers, ENGINE_TIMEOUT, f"the engine of {name}", poll=0.5)
    except TimedOut:
        raise LabError(
            f"the engine of machine {name} did not answer within {ENGINE_TIMEOUT:.0f} s",
            f"see `docker logs {container_name(name)}`",
        ) from None


def form_swarm(engines: dict[str, docker.DockerClient], progress: Progress) -> None:
    """The first machine initialises the swarm and manages it; the others join as workers."""
    first, *others = engines
    manager = engines[first]
    progress(f"docker swarm init on {first}")
    manager.swarm.init(
        advertise_addr=address(first), listen_addr=f"0.0.0.0:{SWARM_PORT}", force_new_cluster=False
    )
    manager.swarm.reload()
    token = manager.swarm.attrs["JoinTokens"]["Worker"]
    for name in others:
        progress(f"docker swarm join on {name}")
        engines[name].swarm.join(
            remote_addrs=[f"{address(first)}:{SWARM_PORT}"],
            join_token=token,
            advertise_addr=address(name),
            listen_addr=f"0.0.0.0:{SWARM_PORT}",
        )

    def all_ready() -> bool:
        nodes = manager.nodes.list()
        return len(nodes) == len(engines) and all(
            n.attrs.get("Status", {}).get("State") == "ready" for n in nodes
        )

    wait_until(all_ready, ENGINE_TIMEOUT, "every machine to be a ready swarm node", poll=0.5)


def cgroup_parent(name: str) -> str:
    return f"/{container_name(name)}"


def remove_cgroups(root: Path = Path("/sys/fs/cgroup")) -> list[str]:
    """The machines' cgroup trees, deepest first: a cgroup with no process left is removed
    by rmdir (one still holding a process refuses, and stays)."""
    removed = []
    for tree in sorted(root.glob(f"*/{PREFIX}-*")):
        for here, _, _ in os.walk(tree, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(here)
                removed.append(here)
    return removed


def remove(client: docker.DockerClient, progress: Progress) -> list[str]:
    """Every container, volume and network of the test cluster (its image stays cached)."""
    removed = []
    wanted = {"label": LABEL}
    for summary in client.api.containers(all=True, filters=wanted):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(summary["Id"], force=True, v=True)
            removed.append(summary["Names"][0].lstrip("/"))
            progress(f"removed {removed[-1]}")
    for volume in client.volumes.list(filters=wanted):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)
            removed.append(str(volume.name))
    for network in client.networks.list(filters=wanted):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
            removed.append(str(network.name))
    for _ in range(1000):  # a shared mount may be stacked (its own propagated copies)
        if not mounted(SOCKETS):
            break
        try:
            subprocess.run(
                ["umount", "-l", str(SOCKETS)],
                capture_output=True,
                check=False,
                timeout=MOUNT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise TimedOut(
                f"`umount -l {SOCKETS}`", MOUNT_TIMEOUT, f"unmount it by hand: umount -l {SOCKETS}"
            ) from None
    shutil.rmtree(SOCKETS, ignore_errors=True)
    remove_cgroups()
    return removed


@contextlib.contextmanager
def made(client: docker.DockerClient, count: int, progress: Progress) -> Iterator[list[Machine]]:
    """A test cluster for the block, removed after it whatever happens."""
    try:
        yield make(client, count, progress)
    finally:
        with ctrl_c_ignored():
            remove(client, progress)
