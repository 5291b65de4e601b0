"""A live socket script inside a lab host: sockets that outlive a step.

``ScriptSession`` starts ``python3 -m services.sockscript --serve T0`` in a
host through the Docker API with stdin attached, sends one step at a time and
reads back its events. Between two steps the driver can break something (kill
a process, cut a cable) and then see what the very same socket does next.
"""

from __future__ import annotations

import contextlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import docker
from docker.models.containers import Container

from lab.errors import LabError
from services.sockscript import Event

STDOUT, STDERR = 1, 2


class SessionError(LabError):
    """The session process in the host failed or went away."""


@dataclass
class ScriptSession:
    client: docker.DockerClient
    container: Container
    t0: float  # CLOCK_MONOTONIC reading that event times count from

    def __post_init__(self) -> None:
        exec_id = self.client.api.exec_create(
            self.container.id,
            ["python3", "-m", "services.sockscript", "--serve", repr(self.t0)],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
        )["Id"]
        attached: Any = self.client.api.exec_start(exec_id, socket=True)
        self._sock = attached._sock  # the hijacked HTTP connection: stdin out, frames in
        self._buffer = b""
        self._stderr = b""

    def step(self, **step: Any) -> list[Event]:
        """Run one step in the host; its events (usually one, several for recv_all)."""
        try:
            self._sock.sendall(json.dumps(step).encode() + b"\n")
            reply = json.loads(self._line())
        except OSError as exc:
            raise SessionError(f"the session in {self.container.name} broke: {exc}") from None
        if isinstance(reply, dict):
            raise SessionError(f"{self.container.name}: {reply.get('error')}")
        return [Event(**e) for e in reply]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(1)  # end of stdin: the session closes its sockets and exits
        self._sock.close()

    def __enter__(self) -> ScriptSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            stream, data = self._frame()
            if stream == STDOUT:
                self._buffer += data
            else:
                self._stderr += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _frame(self) -> tuple[int, bytes]:
        # Docker multiplexes a non-tty exec: an 8-byte header (stream, 0, 0, 0, size) per frame.
        header = self._exactly(8)
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        return stream, self._exactly(size)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                detail = self._stderr.decode(errors="replace").strip().splitlines()
                raise SessionError(
                    f"the socket session in {self.container.name} ended"
                    + (f": {detail[-1]}" if detail else "")
                )
            data += chunk
        return data
