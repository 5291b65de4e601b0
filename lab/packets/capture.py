"""Capturing the lab network's frames for the length of a block of code.

The capture points are the lab networks' bridges on the Docker host: the switches
the hosts are plugged into. Each sees every frame between its hosts exactly once
(a frame routed from one network to another is seen once on each), and keeps
seeing them while a host is killed, frozen, cut off or restarted, which a
capture inside a host's own namespace would not survive.

While capturing, the hosts' transmit checksum offload is switched off (unless
asked not to), so that the frames carry the checksums a real wire would; it is
switched back on afterwards, also after Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from lab.backends.engine import Engine
from lab.engine import helpers
from lab.errors import HelperFailed, LabError, PacketError, UsageError
from lab.interrupts import ctrl_c_ignored
from lab.progress import Progress, silent

INSIDE = "/capture.pcap"
READY_TIMEOUT = 15.0


@dataclass
class CaptureInfo:
    path: Path
    interface: str
    offload_off: list[str] = field(default_factory=list)  # hosts whose offload was switched off
    clock_offset: float = 0.0  # wall clock minus CLOCK_MONOTONIC: puts frames on events' time line

    def to_json(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "interface": self.interface,
            "offload_off": self.offload_off,
            "clock_offset": self.clock_offset,
        }


@contextmanager
def capturing(
    backend: Engine,
    path: Path,
    *,
    offload: bool = False,
    progress: Progress = silent,
    purpose: str = "capture",
) -> Iterator[CaptureInfo]:
    """Capture every frame on the lab network into ``path`` (pcap) while the block runs.

    ``purpose`` goes into the helper's name and labels: an experiment that takes its
    own capture inside a user's --capture shows which is which in `docker ps`.
    """
    info = CaptureInfo(path, backend.capture_interfaces())
    hosts = [] if offload else list(backend.topology.hosts)
    with offload_off(backend, hosts, info.offload_off, progress):
        helper: helpers.Helper | None = None
        try:
            progress(f"capturing on {info.interface}")
            helper = _start(
                backend, purpose, helpers.Namespace.docker_host(), info.interface, INSIDE
            )
            info.clock_offset = time.time() - time.monotonic()
            yield info
        finally:
            with ctrl_c_ignored():
                if helper is not None:
                    try:
                        _collect(helper, path)
                    finally:
                        helper.remove()


@contextmanager
def offload_off(
    backend: Engine, hosts: list[str], done: list[str], progress: Progress = silent
) -> Iterator[None]:
    """Transmit checksum offload off on ``hosts`` for the block (``done`` lists those it
    was switched off on), and back on afterwards, also after Ctrl-C."""

    def host_back(host: str) -> None:
        # A restarted or reconnected host has a new interface, with offload on again.
        if host in hosts:
            with suppress(LabError):
                set_offload(backend, host, on=False)

    failed_back_on: list[str] = []
    try:
        for host in hosts:
            progress(f"switching off checksum offload on {host}")
            done.append(host)  # noted first: a Ctrl-C may land mid-way
            set_offload(backend, host, on=False)
        if hosts:
            backend.on_host_back.append(host_back)
        yield
    finally:
        with ctrl_c_ignored():
            if host_back in backend.on_host_back:
                backend.on_host_back.remove(host_back)
            for host in done:
                try:
                    set_offload(backend, host, on=True)
                except LabError as exc:
                    state = backend.states().get(host)
                    if state is not None and state.status == "running":
                        failed_back_on.append(f"{host} ({exc.what})")
                    # a host left down starts its next interface with offload on
    if failed_back_on:
        raise PacketError(
            f"checksum offload could not be switched back on for {', '.join(failed_back_on)}",
            "`socklab chaos restart HOST` gives it a fresh interface, with offload on",
        )


@dataclass
class Place:
    """Where a capture is taken: a namespace, its interfaces, and the hosts whose frames
    it sees (their offload is switched off while it runs)."""

    namespace: helpers.Namespace
    interfaces: str  # the capture helper's argument: names, comma-separated, or "all"
    hosts: list[str]
    words: str  # for people: "the bridge of network lab", "shouthost (every interface)"


def place(backend: Engine, target: str | None) -> Place:
    """A host or process (its namespace, every interface, loopback too), a lab network
    (its bridge on the Docker host), or None: every lab network."""
    topology = backend.topology
    if target is None:
        return Place(
            helpers.Namespace.docker_host(),
            backend.capture_interfaces(),
            list(topology.hosts),
            f"every lab network ({backend.capture_interfaces()})",
        )
    if target in topology.networks and target not in topology.services:
        bridge = backend.bridge(target)
        on = [h.name for h in topology.hosts.values() if target in h.networks]
        return Place(helpers.Namespace.docker_host(), bridge, on, f"network {target} ({bridge})")
    if target not in topology.services:
        raise UsageError(
            f"nothing to capture named {target!r}",
            f"a host, process or network: {', '.join([*topology.services, *topology.networks])}",
        )
    host = topology.host_of(target).name
    # Its peers' frames too carry real checksums only with their offload off.
    networks = set(topology.hosts[host].networks)
    peers = [h.name for h in topology.hosts.values() if networks & set(h.networks)]
    return Place(
        helpers.Namespace.of_host(backend, host),
        "all",
        peers,
        f"{host} (every interface, loopback included)",
    )


@contextmanager
def streaming(
    backend: Engine, where: Place, *, offload: bool = False, progress: Progress = silent
) -> Iterator[helpers.Helper]:
    """A capture helper streaming pcap on its standard output (``stream()``) while the
    block runs; removed afterwards, and the offload put back, also after Ctrl-C."""
    with offload_off(backend, [] if offload else where.hosts, [], progress):
        helper: helpers.Helper | None = None
        try:
            progress(f"capturing on {where.words}")
            helper = _start(backend, "capture-live", where.namespace, where.interfaces, "-")
            yield helper
        finally:
            if helper is not None:
                with ctrl_c_ignored():
                    helper.remove()


def _start(
    backend: Engine, purpose: str, namespace: helpers.Namespace, interfaces: str, out: str
) -> helpers.Helper:
    helper = helpers.start(
        backend,
        purpose,
        namespace,
        ["python3", "-m", "services.helpers.capture", interfaces, out],
        "NET_RAW",
        streamed=out == "-",
    )
    try:
        helpers.wait_ready(helper, "capturing on", READY_TIMEOUT)
    except HelperFailed as exc:
        helper.remove()
        raise PacketError(f"the capture helper did not start: {exc.output.strip()}") from None
    return helper


def set_offload(backend: Engine, host: str, *, on: bool) -> None:
    helpers.run(
        backend,
        "offload",
        helpers.Namespace.of_host(backend, host),
        ["python3", "-m", "services.helpers.netadmin", "all", "on" if on else "off"],
        "NET_ADMIN",
    )


def _collect(helper: helpers.Helper, path: Path) -> None:
    """Stop the capture (SIGTERM ends it cleanly) and copy its file out."""
    helper.stop(5)
    data = helper.read_file(INSIDE)
    if data is None:
        raise PacketError("the capture helper wrote no file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextmanager
def taking(
    backend: Engine, places: dict[str, Place], folder: Path, purpose: str = "capture"
) -> Iterator[dict[str, Path]]:
    """One capture per place while the block runs, each into its own file in ``folder``
    (so which wire a frame crossed stays known); the helpers removed however it ends."""
    files = {label: folder / f"{i}.pcap" for i, label in enumerate(places)}
    started: dict[str, helpers.Helper] = {}
    try:
        for label, where in places.items():
            started[label] = _start(backend, purpose, where.namespace, where.interfaces, INSIDE)
        yield files
    finally:
        failed: list[LabError] = []
        with ctrl_c_ignored():
            for label, helper in started.items():  # every one collected and removed
                try:
                    _collect(helper, files[label])
                except LabError as exc:
                    failed.append(exc)
                finally:
                    helper.remove()
        if failed:
            raise failed[0]
