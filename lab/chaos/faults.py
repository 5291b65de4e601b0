"""Faults, injected through the Docker SDK, and always undone.

  kill     SIGKILL a process (its host keeps its IP) or a host (its IP and
           every process in its PID namespace go with it)
  stop     SIGTERM, then SIGKILL after a grace period: the process closes its sockets
  pause    freeze every process of the container (cgroup freezer); resume thaws it
  cut      take a host off its lab networks (its interfaces go); heal puts it
           back on each, on the same IP with the same DNS aliases
  restart  stop and start again, on the same IP and port
  isolate  (a lab across machines) the host's whole machine cut off from every other
           machine for the lab's traffic: to the other hosts it is lost; rejoin puts
           it back
  sever    (a lab across machines) the link between the host's machine and the
           client's machine cut for the lab's traffic, both machines alive; mend
           joins them again

``Chaos`` remembers how to undo what it did; ``undo_all`` (also run on Ctrl-C
by ``injected``) puts everything back and waits until the lab is healthy.
``restore`` mends whatever state the lab was left in, whoever broke it: it
checks everything the topology promises (each host on each of its networks, at
its address, with its names; each process running; routes and links as
declared) and mends what differs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from lab import journal
from lab.backends.base import MachineFaults
from lab.backends.engine import Engine
from lab.backends.model import dns_names, unlike_promised
from lab.chaos import declared
from lab.errors import FaultError, LabError, Unhealthy, UsageError
from lab.interrupts import ctrl_c_ignored
from lab.progress import Progress, silent

log = logging.getLogger("lab")
KINDS = (
    "kill", "stop", "pause", "resume", "cut", "heal", "restart", "isolate", "rejoin", "sever",
    "mend",
)  # fmt: skip
UNDO = {
    "kill": "start",
    "stop": "start",
    "pause": "resume",
    "cut": "heal",
    "isolate": "rejoin",
    "sever": "mend",
}


@dataclass
class Chaos:
    backend: Engine
    progress: Progress = silent
    undo: list[tuple[str, str]] = field(default_factory=list)

    def apply(self, kind: str, target: str) -> None:
        if kind not in (*KINDS, "start"):
            raise UsageError(f"no fault {kind!r}; one of: {', '.join(KINDS)}")
        self.backend.topology.host_of(target)  # an unknown name fails here, with the known ones
        # The undo is noted before the fault is applied: a Ctrl-C that lands while Docker
        # carries the fault out must still find it (undoing a fault that never happened is
        # harmless: starting a running container does nothing).
        if kind in UNDO:
            self.undo.append((UNDO[kind], target))
        log.info("fault: %s %s", kind, target)
        try:
            getattr(self, f"_{kind}")(target)
        except FaultError:
            if kind in UNDO:
                self.undo.pop()
            raise
        journal.publish(self.backend.topology.project, "fault", action=kind, target=target)

    def undo_all(self) -> None:
        failed: list[LabError] = []
        while self.undo:
            kind, target = self.undo.pop()
            self.progress(f"undoing: {kind} {target}")
            try:
                self.apply(kind, target)
            except FaultError:
                pass
            except LabError as exc:  # (an overlay slow to come back) the rest still undone
                failed.append(exc)
        # A fault Docker was still carrying out when Ctrl-C arrived can land after its
        # undo (a kill finishing after the start that undid it, seen in CI). So the last
        # word is restore's: whatever is down, paused or cut off is mended, until whole.
        for attempt in range(3):
            try:
                restore(self.backend, self.progress)
                break
            except Unhealthy:
                if attempt == 2:
                    raise
        if failed:
            raise failed[0]

    # --- the faults ---

    def _is_host(self, target: str) -> bool:
        return target in self.backend.topology.hosts

    def _kill(self, target: str) -> None:
        self.backend.signal(target, "kill")

    def _stop(self, target: str) -> None:
        self.backend.signal(target, "stop")

    def _start(self, target: str) -> None:
        self.backend.signal(target, "start")
        if self._is_host(target):
            self._host_back(target)  # before its processes can send anything
            # The processes died with the host's PID namespace; they rejoin the new one.
            for process in self.backend.topology.hosts[target].processes:
                self.backend.signal(process, "start")

    def _host_back(self, host: str) -> None:
        declared.apply(self.backend, host)  # a new namespace or interface: routes and link again
        for hook in self.backend.on_host_back:
            hook(host)

    def _pause(self, target: str) -> None:
        self.backend.signal(target, "pause")

    def _resume(self, target: str) -> None:
        self.backend.signal(target, "resume")

    def _restart(self, target: str) -> None:
        self.backend.signal(target, "restart")
        if self._is_host(target):
            self._host_back(target)
            for process in self.backend.topology.hosts[target].processes:
                self.backend.signal(process, "restart")

    def _isolate(self, target: str) -> None:
        self._machine_faults("isolate").apply("isolate", self._machine(target), "", self.progress)

    def _rejoin(self, target: str) -> None:
        self._machine_faults("rejoin").apply("rejoin", self._machine(target), "", self.progress)

    def _sever(self, target: str) -> None:
        faults = self._machine_faults("sever")
        faults.apply("sever", self._machine(target), self._client_machine(), self.progress)

    def _mend(self, target: str) -> None:
        faults = self._machine_faults("mend")
        faults.apply("mend", self._machine(target), self._client_machine(), self.progress)

    def _machine_faults(self, action: str) -> MachineFaults:
        """What only a lab across machines can do, asked of the backend."""
        if self.backend.machine_faults is None:
            raise UsageError(
                f"{action}: this lab runs on one Docker Engine",
                "machine faults need a lab across machines (--cluster; docs/scale-out.md)",
            )
        return self.backend.machine_faults

    def _machine(self, target: str) -> str:
        return self.backend.machine_of(self.backend.topology.host_of(target).name)

    def _client_machine(self) -> str:
        """The machine at the other end of a severed link: the client's."""
        return self.backend.machine_of(self.backend.topology.client.name)

    def _cut(self, target: str) -> None:
        if not self._is_host(target):
            hosts = ", ".join(self.backend.topology.hosts)
            raise UsageError(f"cut takes a host ({hosts}), not the process {target}")
        for key in self.backend.topology.hosts[target].networks:
            with contextlib.suppress(FaultError):  # already off this one
                self.backend.disconnect(target, key)

    def _heal(self, target: str) -> None:
        host = self.backend.topology.hosts[target]
        attached = self.backend.states()[target].attached
        for interface in host.interfaces:
            if interface.network in attached:
                now = attached[interface.network]
                if now.ip == interface.ip and set(dns_names(host, interface)) <= set(now.aliases):
                    continue  # as promised
                self.backend.disconnect(target, interface.network)
            self.backend.connect(target, interface.network)
        self._host_back(target)


@contextlib.contextmanager
def injected(backend: Engine, progress: Progress = silent) -> Iterator[Chaos]:
    """Faults for the length of a block; undone however the block ends, Ctrl-C included."""
    chaos = Chaos(backend, progress)
    try:
        yield chaos
    finally:
        with ctrl_c_ignored():
            chaos.undo_all()


def restore(backend: Engine, progress: Progress = silent) -> list[str]:
    """Mend the lab whatever broke it: what differs from the topology's promises is put back
    (resumed, started, reconnected at its address with its names); returns what was done."""
    faults = backend.machine_faults
    done = [f"mend {m}" for m in faults.mend(progress)] if faults is not None else []
    states = backend.states()
    chaos = Chaos(backend, progress)
    for name, host in backend.topology.hosts.items():
        state = states.get(name)
        if state is None:
            raise FaultError(f"{name} has no container", "run `lab up`")
        if state.status == "paused":
            chaos.apply("resume", name)
            done.append(f"resume {name}")
        if state.status in ("exited", "created", "dead"):
            chaos.apply("start", name)
            done.append(f"start {name} and its processes")
            continue
        wrong = unlike_promised(host, state.attached)
        if wrong:
            chaos.apply("heal", name)
            done.append(f"heal {name} ({'; '.join(wrong)})")
    states = backend.states()
    for name in backend.topology.processes:
        state = states.get(name)
        if state is not None and state.status == "paused":
            chaos.apply("resume", name)
            done.append(f"resume {name}")
        elif state is not None and state.status != "running":
            chaos.apply("start", name)
            done.append(f"start {name}")
    backend.wait_healthy(progress)
    return done
