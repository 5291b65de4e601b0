"""A lab's parts as objects: ``net.host("apphost")`` and ``net.process("db")``, each a
view onto the running lab through its ``Lab`` (lab/api.py), holding nothing of its own."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lab.backends.model import ServiceState
from lab.progress import Progress, silent
from lab.services.probes.porttable import Entry, HostSocket
from lab.services.probes.sockscript import Step
from lab.traffic.script import Events, Script

if TYPE_CHECKING:
    from lab.api import Lab
    from lab.syscalls.trace import Trace


class HostView:
    """One host of a lab: a kernel with addresses, running processes."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name

    @property
    def spec(self) -> Any:
        return self.lab.topology.hosts[self.name]

    @property
    def ip(self) -> str:
        return str(self.spec.ip)

    @property
    def ips(self) -> dict[str, str]:
        """Its address on each of its networks."""
        return {i.network: i.ip for i in self.spec.interfaces}

    @property
    def processes(self) -> builtins.list[ProcessView]:
        return [ProcessView(self.lab, p) for p in self.spec.processes]

    @property
    def macs(self) -> dict[str, str]:
        """Its interfaces' MAC addresses, by network, as Docker reports them (running only)."""
        state = self.state
        return {key: a.mac for key, a in state.attached.items()} if state else {}

    @property
    def state(self) -> ServiceState | None:
        return self.lab.states().get(self.name)

    def port_table(self) -> builtins.list[Entry]:
        """Its listening TCP and bound UDP sockets, their owners and their fds, read from
        /proc inside."""
        return self.lab.backend.port_table(self.name)

    def sockets(self) -> builtins.list[HostSocket]:
        """Every TCP and UDP socket of its kernel in any state (LISTEN, ESTABLISHED,
        TIME_WAIT, CLOSE_WAIT...) with its queues, owner and fd, like ``ss -tanup``."""
        return self.lab.backend.sockets(self.name)

    def run(self, script: Script | builtins.list[Step], t0: float | None = None) -> Events:
        return self.lab.run(script, on=self.name, t0=t0)

    def exec(self, argv: builtins.list[str], timeout: float = 60.0) -> bytes:
        """Run a command inside the host (as its unprivileged user); its output."""
        return self.lab.backend.run_in(self.name, argv, timeout)

    def kill(self) -> None:
        self.lab.chaos("kill", self.name)

    def stop(self) -> None:
        self.lab.chaos("stop", self.name)

    def start(self) -> None:
        self.lab.chaos("start", self.name)

    def pause(self) -> None:
        self.lab.chaos("pause", self.name)

    def resume(self) -> None:
        self.lab.chaos("resume", self.name)

    def restart(self) -> None:
        self.lab.chaos("restart", self.name)

    def cut(self) -> None:
        self.lab.chaos("cut", self.name)

    def heal(self) -> None:
        self.lab.chaos("heal", self.name)

    def __repr__(self) -> str:
        processes = ", ".join(self.spec.processes) or "no processes"
        return f"<Host {self.name} {', '.join(self.ips.values())}: {processes}>"


class ProcessView:
    """One process of a lab: a program in a host's namespaces, listening on its ports."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name

    @property
    def host(self) -> HostView:
        return HostView(self.lab, self.lab.topology.processes[self.name].host)

    @property
    def ports(self) -> tuple[Any, ...]:
        return self.lab.topology.processes[self.name].ports

    @property
    def state(self) -> ServiceState | None:
        return self.lab.states().get(self.name)

    @property
    def pid(self) -> int:
        """Its pid in its host's PID namespace (as the host's port table shows it)."""
        return self.lab.backend.pid_of(self.name)

    @contextlib.contextmanager
    def tracing(self, progress: Progress = silent) -> Iterator[Trace]:
        """Its socket system calls while the block runs (see ``Lab.tracing``)."""
        with self.lab.tracing(self.name, progress=progress) as trace:
            yield trace

    def logs(self, since: float | None = None) -> str:
        """What the process has written to its standard output and error
        (``since``: only what it wrote from that Unix time, ``time.time()``, on)."""
        return self.lab.backend.logs(self.name, since)

    def exec(self, argv: builtins.list[str], timeout: float = 60.0) -> bytes:
        return self.lab.backend.run_in(self.name, argv, timeout)

    def kill(self) -> None:
        self.lab.chaos("kill", self.name)

    def stop(self) -> None:
        self.lab.chaos("stop", self.name)

    def start(self) -> None:
        self.lab.chaos("start", self.name)

    def pause(self) -> None:
        self.lab.chaos("pause", self.name)

    def resume(self) -> None:
        self.lab.chaos("resume", self.name)

    def restart(self) -> None:
        self.lab.chaos("restart", self.name)

    def __repr__(self) -> str:
        ports = ", ".join(str(p) for p in self.ports) or "no declared ports"
        return f"<Process {self.name} on {self.host.name}: {ports}>"
