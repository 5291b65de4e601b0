"""A shell in a lab host, on a terminal (a browser's, or `socklab shell`'s): a Docker exec.

The shell runs as the lab's unprivileged user (the one compose.yaml runs every
host as): no capability, nothing writable but /tmp, no Docker socket. Docker has
no way to end an exec, and one whose client went away keeps running; so each
terminal carries a mark in its environment, which its children inherit, and
``close`` kills every process of the host that carries it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import docker
from docker.models.containers import Container

USER = "10001:10001"  # compose.yaml's x-least-privilege user
MARK = "SOCKLAB_TERMINAL"
# No profile: its prompt names the user by /etc/passwd, where the lab's uid has no entry.
SHELL = ["/bin/bash", "--noprofile", "--norc", "-i"]
ENVIRONMENT = {"HOME": "/tmp", "TERM": "xterm-256color", "PS1": r"learner@\h:\w\$ "}
# Every process carrying the mark, killed: /proc is readable for one's own processes.
KILL = (
    'for p in /proc/[0-9]*; do grep -qzx "$0" "$p/environ" 2>/dev/null && '
    'kill -KILL "${p#/proc/}" 2>/dev/null; done; true'
)


# Everything of the lab's user in a host but its init and the sleep it holds the host with
# (what a terminal started, even under `env -i`): ended before a run, so that nothing a
# student left running in their client steers what the run observes.
END_ALL = (
    'for p in /proc/[0-9]*; do n="${p#/proc/}"; [ "$n" = 1 ] && continue; '
    '[ "$n" = "$$" ] && continue; '
    'c="$(tr "\\0" " " < "$p/cmdline" 2>/dev/null)"; [ "$c" = "sleep infinity " ] && continue; '
    'kill -KILL "$n" 2>/dev/null; done; true'
)


def end_all(container: Container) -> None:
    with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
        container.exec_run(["sh", "-c", END_ALL], user=USER)


class Terminal:
    """One shell on a pseudo-terminal: bytes in, bytes out (raw: a tty exec has no frames)."""

    def __init__(self, client: docker.DockerClient, container: Container) -> None:
        self.name = container.name or "?"
        self._client = client
        self._container = container
        self._mark, self._id = _marked_exec(client, container, SHELL, stdin=True, tty=True)
        attached: Any = client.api.exec_start(self._id, socket=True, tty=True)
        self._sock: socket.socket = attached._sock  # the hijacked connection: raw tty bytes
        self._closed = False

    def fileno(self) -> int:
        """The connection's descriptor, for select(): a console waits on it and its keyboard."""
        return self._sock.fileno()

    def read(self, size: int = 65536) -> bytes:
        """What the terminal printed; b"" once the shell has ended."""
        try:
            return self._sock.recv(size)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(data)

    def resize(self, rows: int, cols: int) -> None:
        rows, cols = max(1, min(rows, 500)), max(1, min(cols, 500))
        with contextlib.suppress(docker.errors.APIError):
            self._client.api.exec_resize(self._id, height=rows, width=cols)

    def close(self) -> None:
        """End the shell and everything it started, then the connection."""
        if self._closed:
            return
        self._closed = True
        _kill_marked(self._container, self._mark)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()


class Command:
    """One command line run by the terminal's shell, with no tty: stdout and stderr apart
    (a pipe wants them so), and its exit status. Same user, place and mark as a terminal."""

    def __init__(self, client: docker.DockerClient, container: Container, line: str) -> None:
        self._client = client
        self._container = container
        argv = [*SHELL[:-1], "-c", line]
        self._mark, self._id = _marked_exec(client, container, argv, stdout=True, stderr=True)

    def output(self) -> Iterator[tuple[bytes, bytes]]:
        """(stdout, stderr) pieces as the command writes them, until it ends."""
        for out, err in self._client.api.exec_start(self._id, stream=True, demux=True):
            yield out or b"", err or b""

    def exit_code(self) -> int:
        code = self._client.api.exec_inspect(self._id).get("ExitCode")
        return 1 if code is None else int(code)

    def close(self) -> None:
        """End whatever the command left running (a Ctrl-C mid-way, a `sleep &`)."""
        _kill_marked(self._container, self._mark)


def _marked_exec(
    client: docker.DockerClient, container: Container, argv: list[str], **options: Any
) -> tuple[str, str]:
    """An exec as the lab's user in /tmp, its environment carrying a fresh mark: (mark, id)."""
    token = secrets.token_hex(8)
    created = client.api.exec_create(
        container.id,
        argv,
        user=USER,
        environment={**ENVIRONMENT, MARK: token},
        workdir="/tmp",
        privileged=False,
        **options,
    )
    return f"{MARK}={token}", str(created["Id"])


def _kill_marked(container: Container, mark: str) -> None:
    with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
        container.exec_run(["sh", "-c", KILL, mark], user=USER)
