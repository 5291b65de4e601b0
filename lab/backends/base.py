"""What a backend is: the verbs the rest of the lab may use to run a topology somewhere.

Every verb takes the topology's names (a host, a process, a network key) and answers
in lab/backends/model.py's plain data; nothing of the engine underneath (a Docker
``Container``, a client) crosses this line. Two backends meet it:

- ``Engine`` (lab/backends/engine.py): one Docker Engine, with Compose.
- ``Swarm`` (lab/backends/swarm/): several engines joined on an overlay. It alone has
  machines, so it alone offers ``machine_faults``; everyone else finds None there and
  says so, rather than calling something that raises.

What a backend must do, and where a third (Kubernetes) would plug in:
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lab.backends.model import HostStatus, Removed, ServiceState
from lab.progress import Progress, silent
from lab.services.probes.porttable import Entry, HostSocket, RunningProcess
from lab.services.probes.sockscript import Event, Step
from lab.topology import Topology

if TYPE_CHECKING:
    from lab.engine.base_image import Plan
    from lab.engine.compose import Compose


class MachineFaults(Protocol):
    """Faults of machines, not of hosts: only a backend with machines has them."""

    def apply(self, action: str, machine: str, peer: str = "", progress: Progress = silent) -> None:
        """``isolate``/``rejoin`` a machine, or ``sever``/``mend`` it from ``peer``."""

    def mend(self, progress: Progress = silent, wait: bool = True) -> list[str]:
        """Undo every machine fault, whoever left it; the machines mended."""

    def drops(self) -> set[tuple[str, str]]:
        """The cuts in force: (machine holding the rule, machine it drops)."""


class Backend(Protocol):
    topology: Topology
    compose: Compose
    project_dir: Path
    up_phases: dict[str, float]  # where the last `up` spent its time
    on_host_back: list[Callable[[str], None]]  # called when a host has a new interface
    machine_faults: MachineFaults | None  # None: this backend has no machines

    # --- life ---
    def up(
        self,
        progress: Progress,
        timeout: float = ...,
        then: Callable[[], None] | None = None,
        build: bool = True,
    ) -> Plan: ...
    def down(self) -> Removed: ...
    def owned(self) -> Removed: ...
    def wait_healthy(self, progress: Progress, timeout: float = ...) -> None: ...
    def answering(self) -> set[str]: ...

    # --- reading ---
    def states(self) -> dict[str, ServiceState]: ...
    def status(self) -> list[HostStatus]: ...
    def logs(self, service: str, since: float | None = None) -> str: ...
    def port_table(self, host: str) -> list[Entry]: ...
    def sockets(self, host: str) -> list[HostSocket]: ...
    def processes_on(self, host: str) -> list[RunningProcess]: ...
    def pid_of(self, process: str) -> int: ...
    def published_port(self, service: str, container_port: int, protocol: str = "tcp") -> int: ...
    def machine_of(self, service: str) -> str: ...
    def shared_folder(self, host: str) -> Path | None: ...

    # --- acting ---
    def exec_in(
        self, service: str, argv: list[str], timeout: float = ...
    ) -> tuple[bytes, bytes]: ...
    def run_in(self, service: str, argv: list[str], timeout: float = ...) -> bytes: ...
    def signal(self, service: str, kind: str) -> None: ...
    def disconnect(self, host: str, network: str) -> None: ...
    def connect(self, host: str, network: str) -> None: ...
    def run_script(
        self, service: str, steps: list[Step], t0: float | None = None
    ) -> list[Event]: ...
    def run_on_docker_host(self, steps: list[Step], t0: float) -> list[Event]: ...
