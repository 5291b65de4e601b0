"""The learner's server as a process of the lab: started, watched, killed, started again.

It runs in a host's namespaces with the lab's image and hardening, like every process
of the lab (lab.engine.helpers.start_process), in place of one of the lab's processes
(stopped meanwhile, started again after). Its readiness is read from the kernel (a
socket bound to its port in the host's table), never by connecting: a server that
serves one client would be used up by a health check. The program's text travels in
its environment, so nothing is written to the host's disk and a remote engine works
the same.
"""

from __future__ import annotations

import base64
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.engine import helpers
from lab.engine.docker_client import EngineError
from lab.errors import ExitCode, LabError, UsageError
from lab.interrupts import ctrl_c_ignored
from lab.progress import Progress, silent
from lab.services.probes.porttable import HostSocket

if TYPE_CHECKING:
    from lab.api import Lab

PURPOSE = "check"
READY_TIMEOUT = 10.0
TIME_WAIT_S = 65.0  # Linux holds TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN)
POLL = 0.2
MAX_SOURCE = 100_000  # bytes: the kernel takes at most 128 KiB in one environment string

# Runs the program from its text, under its own file name (tracebacks show its lines).
BOOTSTRAP = """\
import base64, linecache, os, sys
name = os.environ.pop("LAB_CHECK_FILE")
text = base64.b64decode(os.environ.pop("LAB_CHECK_SOURCE")).decode("utf-8")
linecache.cache[name] = (len(text), None, text.splitlines(True), name)
sys.argv[0] = name
code = compile(text, name, "exec")
exec(code, {"__name__": "__main__", "__file__": name, "__builtins__": __builtins__})
"""


class ServerFailed(LabError):
    """The server under check never listened (it exited, or bound another port)."""

    exit_code = ExitCode.CLAIM_FAILED  # the learner's server failed, not the lab

    def __init__(self, what: str, output: str) -> None:
        lines = output.strip().splitlines()
        super().__init__(what + (f": {lines[-1]}" if lines else ""))
        self.output = output


@dataclass(frozen=True)
class Listening:
    pid: int
    address: str  # the address its socket is bound to, as the kernel shows it


class Server:
    """One program under check, on ``host``, answering on ``port``/``protocol``."""

    def __init__(
        self,
        lab: Lab,
        host: str,
        filename: str,
        source: bytes,
        protocol: str,
        port: int,
        argv: list[str],
    ) -> None:
        if len(source) > MAX_SOURCE:
            raise UsageError(
                f"{filename} is {len(source)} bytes; a server under check may be {MAX_SOURCE}"
            )
        try:
            source.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{filename} is not UTF-8 text") from None
        self.lab = lab
        self.host = host
        self.filename = filename
        self.source = source
        self.protocol = protocol
        self.port = port
        self.argv = argv
        self.label = f"check:{filename}"  # its LAB_SERVICE: what the port table names it
        self.name = f"{lab.project}-check"
        self.helper: helpers.Helper | None = None
        self.listening: Listening | None = None
        self.starts = 0

    # --- its life ----------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> Listening:
        """Start it and wait until the kernel shows its socket; ServerFailed if it never does."""
        self.remove()
        self.starts += 1
        self.helper = helpers.start_process(
            self.lab.backend,
            self.host,
            self.name,
            ["python3", "-c", BOOTSTRAP, *self.argv],
            PURPOSE,
            environment={
                "LAB_SERVICE": self.label,
                "LAB_CHECK_FILE": self.filename,
                "LAB_CHECK_SOURCE": base64.b64encode(self.source).decode("ascii"),
                "PORT": str(self.port),
                "PYTHONUNBUFFERED": "1",
            },
        )
        self.listening = self._wait_listening(timeout)
        return self.listening

    def wait_port_free(self, progress: Progress = silent) -> int:
        """Wait (at most TIME_WAIT_S) until no connection of an earlier run lingers in
        TIME_WAIT on the port (a server without SO_REUSEADDR cannot bind it meanwhile).
        How many there were: 0, and nothing was waited for."""
        if self.protocol != "tcp":
            return 0
        first = lingering = time_waits(self.lab.backend.sockets(self.host), self.port)
        deadline = time.monotonic() + TIME_WAIT_S
        if lingering:
            progress(
                f"waiting for {lingering} connection(s) of an earlier run in TIME_WAIT on "
                f"{self.port} to expire (at most {TIME_WAIT_S:g} s)"
            )
        while lingering and time.monotonic() < deadline:
            time.sleep(1.0)
            lingering = time_waits(self.lab.backend.sockets(self.host), self.port)
        return first

    def _wait_listening(self, timeout: float) -> Listening:
        deadline = time.monotonic() + timeout
        while True:
            bound = [
                e
                for e in self.lab.backend.port_table(self.host)
                if e.service == self.label and e.protocol.rstrip("6") == self.protocol
            ]
            mine = [e for e in bound if e.port == self.port and e.pid is not None]
            if mine:
                return Listening(int(mine[0].pid or 0), mine[0].address)
            if self.ended():
                raise ServerFailed(
                    f"{self.filename} exited before it listened on {self.port}/{self.protocol}",
                    self.output(),
                )
            if time.monotonic() > deadline:
                others = sorted({f"{e.port}/{e.protocol.rstrip('6')}" for e in bound})
                where = (
                    f"it listens on {', '.join(others)}; give --port" if others else "nothing bound"
                )
                raise ServerFailed(
                    f"{self.filename} did not listen on {self.port}/{self.protocol} within "
                    f"{timeout:g} s ({where})",
                    self.output(),
                )
            time.sleep(POLL)

    def alive(self) -> bool:
        """Running, and its socket still bound (a server may close it and live on)."""
        if self.helper is None or self.ended():
            return False
        return any(
            e.service == self.label and e.port == self.port
            for e in self.lab.backend.port_table(self.host)
        )

    def ended(self) -> bool:
        return self.helper is None or self.helper.ended()

    def ending(self) -> str:
        """How it ended ("exited with 1"), or "" while it runs."""
        if self.helper is None or not self.helper.ended():
            return ""
        code = self.helper.exit_code()
        return "killed" if code == 137 else f"exited with {code}"

    def output(self) -> str:
        return "" if self.helper is None else self.helper.output()

    def kill(self) -> None:
        """SIGKILL: the kernel closes its sockets, as when a server crashes."""
        if self.helper is not None and not self.helper.ended():
            with suppress(EngineError):  # it ended meanwhile: the kernel closed its sockets
                self.helper.kill()
            deadline = time.monotonic() + READY_TIMEOUT
            while not self.helper.ended() and time.monotonic() < deadline:
                time.sleep(0.05)

    def remove(self) -> None:
        if self.helper is not None:
            with ctrl_c_ignored():
                self.helper.remove()
            self.helper = None
            self.listening = None


def time_waits(sockets: list[HostSocket], port: int) -> int:
    """Connections in TIME_WAIT whose local end is ``port``. Pure."""
    return sum(
        1
        for row in sockets
        if row.protocol.startswith("tcp")
        and row.state == "TIME_WAIT"
        and row.local.rsplit(":", 1)[-1] == str(port)
    )


class InPlaceOf:
    """Stops a lab process for the block (its port is the server's), starts it again after."""

    def __init__(self, lab: Lab, process: str, progress: Progress = silent) -> None:
        self.lab = lab
        self.process = process
        self.progress = progress
        self.was_running = False

    def __enter__(self) -> InPlaceOf:
        state = self.lab.states().get(self.process)
        self.was_running = state is not None and state.status == "running"
        if self.was_running:
            self.progress(f"stopping {self.process}: the server under check takes its place")
            self.lab.backend.signal(self.process, "stop")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.was_running:
            with ctrl_c_ignored():
                self.progress(f"starting {self.process} again")
                self.lab.backend.signal(self.process, "start")
                self.lab.wait_healthy(progress=self.progress)
