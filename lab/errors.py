"""The driver's errors. Each one is an environment or lab problem a user can act on.

``lab.cli`` is the one boundary that turns them into a single line (``what`` and
``fix``) and a non-zero exit; everything below raises them with their data.
"""

from __future__ import annotations


class LabError(Exception):
    """Root of every error the driver reports to a user."""

    exit_code = 1

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def line(self) -> str:
        return f"{self.what}; {self.fix}" if self.fix else self.what


class DockerUnavailable(LabError):
    exit_code = 3


class ComposeMissing(LabError):
    exit_code = 3


class ComposeFailed(LabError):
    def __init__(self, command: list[str], output: str) -> None:
        tail = output.strip().splitlines()[-1] if output.strip() else "no output"
        super().__init__(
            f"`{' '.join(command)}` failed: {tail}", "run it by hand to see its full output"
        )
        self.command = command
        self.output = output


class PortTaken(LabError):
    exit_code = 4

    def __init__(self, port: int, protocol: str, variable: str) -> None:
        super().__init__(
            f"port {port}/{protocol} on 127.0.0.1 is already taken by another program",
            f"stop that program, or set {variable} to a free port, or to empty for any free port",
        )
        self.port = port
        self.protocol = protocol
        self.variable = variable


class Unhealthy(LabError):
    exit_code = 5

    def __init__(self, service: str, state: str, detail: str) -> None:
        super().__init__(
            f"service {service} did not become healthy ({state}): {detail}",
            f"see `docker compose logs {service}`",
        )
        self.service = service
        self.state = state
        self.detail = detail


class TopologyError(LabError):
    """compose.yaml does not describe a lab the driver understands."""


class BaseImageError(LabError):
    """No Python base image could be found, pulled or built."""


class NotRunning(LabError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not running", "start the lab with `lab up`")


class UsageError(LabError):
    exit_code = 2
