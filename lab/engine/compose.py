"""The Compose CLI, used for exactly three things: build, up and down.

Everything else the driver does goes through the Docker SDK. Compose v2
(``docker compose``) is required: v1 (``docker-compose`` 1.x) is end-of-life
and does not understand ``pid: service:...``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.errors import ComposeFailed, ComposeMissing, DockerUnavailable

INSTALL_HINT = "run `make setup`, which installs the Compose v2 plugin"
_PORT_IN_USE = re.compile(
    r"(?:0\.0\.0\.0|127\.0\.0\.1):(\d+).*(?:address already in use|port is already allocated)"
)


@dataclass(frozen=True)
class Compose:
    project_dir: Path
    project: str
    env: Mapping[str, str]

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

    def command(self, *args: str) -> list[str]:
        return [
            "docker",
            "compose",
            "--project-directory",
            str(self.project_dir),
            "-p",
            self.project,
            *args,
        ]

    def run(self, *args: str, timeout: float = 600) -> str:
        """Run one Compose command to the end; its output is returned, or raised with it.

        The child gets its own session so that Ctrl-C reaches only the driver,
        which then stops the child and cleans up in order.
        """
        cmd = self.command(*args)
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        except BaseException:  # KeyboardInterrupt or timeout: do not leave it running
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        if proc.returncode != 0:
            raise ComposeFailed(cmd, output)
        return output

    def build(self) -> str:
        return self.run("build")

    def up(self) -> str:
        # Healthiness is awaited by the driver itself, with a progress display.
        return self.run("up", "--detach", "--no-build", "--remove-orphans")

    def down(self) -> str:
        return self.run("down", "--volumes", "--remove-orphans", "--timeout", "3")


def port_in_use(output: str) -> int | None:
    """The host port named by Docker's 'port is already allocated' style of error."""
    match = _PORT_IN_USE.search(output)
    return int(match.group(1)) if match else None
