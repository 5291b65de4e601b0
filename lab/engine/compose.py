"""The Compose CLI, used for exactly five things: config, build, create, up and down.

``config`` is how the driver reads the topology: Compose resolves its own files
(``compose.yaml`` and ``compose.override.yaml``, ``-f``, ``COMPOSE_FILE``, ``.env``,
variables, anchors), so the lab never re-implements any of it. Everything else
the driver does goes through the Docker SDK. Compose v2 (``docker compose``) is
required: v1 (``docker-compose`` 1.x) is end-of-life and does not understand
``pid: service:...``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import ComposeFailed, ComposeMissing, DockerUnavailable, TimedOut, TopologyError
from lab.topology import Topology, from_config

INSTALL_HINT = "run `make setup`, which installs the Compose v2 plugin"
_PORT_IN_USE = re.compile(
    r"(?:0\.0\.0\.0|127\.0\.0\.1):(\d+).*(?:address already in use|port is already allocated)"
)


log = logging.getLogger("lab")
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_PORT_VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)[^}]*\}:(?P<port>\d+)(?:/(?P<proto>tcp|udp))?"
)


@dataclass(frozen=True)
class Compose:
    """One Compose project: where its files are, which files, and under which name.

    ``workdir`` is where Compose runs (its conventions start from there);
    ``files`` and ``project`` are passed as ``-f`` and ``-p`` only when given.
    """

    workdir: Path
    project: str | None = None
    files: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def version(docker: str = "docker") -> str:
        """The Compose v2 version string, or ComposeMissing."""
        if shutil.which(docker) is None:
            raise DockerUnavailable("the docker command is not installed", "install Docker Engine")
        try:
            out = subprocess.run(
                [docker, "compose", "version", "--short"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ComposeMissing("`docker compose version` did not answer", INSTALL_HINT) from None
        version = out.stdout.strip().lstrip("v")
        if out.returncode != 0 or not version[:1].isdigit():
            raise ComposeMissing(
                "Docker Compose v2 (`docker compose`) is not installed", INSTALL_HINT
            )
        if int(version.split(".")[0]) < 2:
            raise ComposeMissing(f"Docker Compose {version} is too old; v2 is needed", INSTALL_HINT)
        return version

    def named(self, project: str) -> Compose:
        """The same files under the project name Compose resolved (so every later
        command, and every label the lab filters by, agrees on it)."""
        return Compose(self.workdir, project, self.files, self.env)

    def with_env(self, key: str, value: str) -> Compose:
        return Compose(self.workdir, self.project, self.files, {**self.env, key: value})

    def command(self, *args: str) -> list[str]:
        files = [arg for f in self.files for arg in ("-f", str(f))]
        project = ["-p", self.project] if self.project else []
        return ["docker", "compose", *files, *project, *args]

    def config(self) -> dict[str, Any]:
        """The project as Compose resolved it (``docker compose config --format json``)."""
        try:
            out = self.run("config", "--format", "json", timeout=60)
        except ComposeFailed as exc:
            raise TopologyError(
                f"Compose cannot read the lab's files: {exc.tail}",
                f"check them with `{' '.join(self.command('config'))}`",
            ) from None
        document: dict[str, Any] = json.loads(out)
        return document

    def topology(self) -> Topology:
        return from_config(self.config())

    def port_hint(self, container_port: int, protocol: str) -> str:
        """The variable that sets where ``container_port`` is published, read from the
        files as written (Compose has already replaced it by its value): a hint only."""
        for path in self.file_paths():
            try:
                text = path.read_text()
            except OSError:
                continue
            for m in _PORT_VARIABLE.finditer(text):
                if (
                    int(m.group("port")) == container_port
                    and (m.group("proto") or "tcp") == protocol
                ):
                    return m.group("name")
        return ""

    def file_paths(self) -> list[Path]:
        if self.files:
            return [f if f.is_absolute() else self.workdir / f for f in self.files]
        named = self.env.get("COMPOSE_FILE") or os.environ.get("COMPOSE_FILE")
        if named:
            return [self.workdir / f for f in named.split(os.pathsep)]
        found = [self.workdir / n for n in COMPOSE_FILES if (self.workdir / n).exists()][:1]
        override = [
            self.workdir / n
            for n in (
                "compose.override.yaml",
                "compose.override.yml",
                "docker-compose.override.yml",
            )
            if (self.workdir / n).exists()
        ][:1]
        return found + override

    def run(self, *args: str, timeout: float = 600) -> str:
        """Run one Compose command to the end; its output is returned, or raised with it.

        The child gets its own session so that Ctrl-C reaches only the driver,
        which then stops the child and cleans up in order.
        """
        cmd = self.command(*args)
        log.info("%s", " ".join(cmd))
        proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        try:
            output, errors = proc.communicate(timeout=timeout)
        except BaseException as exc:  # Ctrl-C or the deadline: do not leave it running
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise TimedOut(f"`{' '.join(cmd)}`", timeout) from None
            raise
        if proc.returncode != 0:
            raise ComposeFailed(cmd, output + errors)
        return output

    def build(self) -> str:
        return self.run("build")

    def create(self) -> str:
        """Networks, volumes and containers, none started (what a named lab takes from
        the pool exists in Docker from here on)."""
        return self.run("create", "--no-build", "--remove-orphans")

    def up(self) -> str:
        # Healthiness is awaited by the driver itself, with a progress display.
        return self.run("up", "--detach", "--no-build", "--remove-orphans")

    def down(self) -> str:
        return self.run("down", "--volumes", "--remove-orphans", "--timeout", "3")


def port_in_use(output: str) -> int | None:
    """The host port named by Docker's 'port is already allocated' style of error."""
    match = _PORT_IN_USE.search(output)
    return int(match.group(1)) if match else None
