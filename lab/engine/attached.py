"""Programs running inside a lab host, attached: talk to them while they run.

``AttachedExec`` starts a command in a container through the Docker API with
its standard streams attached and returns at once, so the driver can act
(kill a process, cut a cable) while the command goes on, then read its output.

``AttachedScript`` runs ``python3 -m services.probes.sockscript --serve T0`` that way:
one step in, its events out, with sockets that outlive a step, so the driver
can see what the very same socket does after it broke something.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Sequence
from typing import Any

import docker
from docker.models.containers import Container

from lab.errors import SessionError, TimedOut
from lab.services.probes.sockscript import Event

STDOUT = 1


READ_TIMEOUT = 120.0  # the longest a program may stay silent before the driver gives up


class AttachedExec:
    def __init__(
        self,
        client: docker.DockerClient,
        container: Container,
        argv: list[str],
        timeout: float = READ_TIMEOUT,
    ) -> None:
        """``timeout``: how long one read may wait for the program; expiry is TimedOut."""
        self.name = container.name or "?"
        self.timeout = timeout
        self._client = client
        self._id = client.api.exec_create(
            container.id, argv, stdin=True, stdout=True, stderr=True, tty=False
        )["Id"]
        attached: Any = client.api.exec_start(self._id, socket=True)
        self._sock = attached._sock  # the hijacked HTTP connection: stdin out, frames in
        self._sock.settimeout(timeout)
        self._stdout = b""
        self._stderr = b""

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def end_input(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(1)

    def read_line(self) -> bytes:
        while b"\n" not in self._stdout:
            if not self._frame():
                raise SessionError(f"the program in {self.name} ended" + self._why())
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line

    def read_to_end(self) -> bytes:
        """Everything it writes until it exits; SessionError if it exits non-zero."""
        while self._frame():
            pass
        code = self._client.api.exec_inspect(self._id).get("ExitCode")
        if code not in (0, None):
            raise SessionError(f"the program in {self.name} exited with {code}" + self._why())
        out, self._stdout = self._stdout, b""
        return out

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    def close(self) -> None:
        self.end_input()
        self._sock.close()

    def _why(self) -> str:
        lines = self._stderr.decode(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""

    def _frame(self) -> bool:
        # A non-tty exec is multiplexed: an 8-byte header (stream, 0, 0, 0, size) per frame.
        header = self._exactly(8)
        if header is None:
            return False
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        data = self._exactly(size) or b""
        if stream == STDOUT:
            self._stdout += data
        else:
            self._stderr += data
        return True

    def _exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            try:
                chunk = self._sock.recv(size - len(data))
            except TimeoutError:
                raise TimedOut(f"the program in {self.name}", self.timeout) from None
            if not chunk:
                return None
            data += chunk
        return data


class AttachedScript:
    def __init__(
        self,
        client: docker.DockerClient,
        container: Container,
        t0: float,
        wrap: Sequence[str] = (),
    ) -> None:
        """``t0``: the CLOCK_MONOTONIC reading that event times count from; ``wrap``: a
        program to run the session under (strace, whose trace ``finish`` returns)."""
        argv = [*wrap, "python3", "-m", "services.probes.sockscript", "--serve", repr(t0)]
        self._exec = AttachedExec(client, container, argv)

    def step(self, **step: Any) -> list[Event]:
        """Run one step in the host; its events (usually one, several for recv_all)."""
        try:
            self._exec.write(json.dumps(step).encode() + b"\n")
            reply = json.loads(self._exec.read_line())
        except TimedOut:
            raise
        except OSError as exc:
            raise SessionError(f"the session in {self._exec.name} broke: {exc}") from None
        if isinstance(reply, dict):
            raise SessionError(f"{self._exec.name}: {reply.get('error')}")
        return [Event(**e) for e in reply]

    def close(self) -> None:
        self._exec.close()  # end of input: the session closes its sockets and exits

    def finish(self) -> str:
        """End the session, wait until it has exited, and return what it wrote to stderr."""
        try:
            self._exec.end_input()
            self._exec.read_to_end()
        finally:
            self._exec.close()
        return self._exec.stderr

    def __enter__(self) -> AttachedScript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
