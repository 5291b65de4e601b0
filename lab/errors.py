"""Every error the driver reports to a user, in one place, with the exit code it ends in.

Code below the CLI raises these with their data; ``lab.cli`` is the one boundary
that turns them into a single line (``what``; ``fix``) and an exit code. A
library user (a lab script, a notebook) gets the exception itself: nothing here
prints or exits.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What `lab` exits with; `lab --help` prints this table."""

    OK = 0
    ERROR = 1  # the lab or a tool it ran failed
    USAGE = 2  # the command line, a file given to it, or the topology lacks something
    NO_DOCKER = 3  # Docker Engine or Compose v2 is missing or unreachable
    PORT_TAKEN = 4  # a port the lab publishes is taken by another program
    UNHEALTHY = 5  # a service never turned healthy, or stopped answering
    CLAIM_FAILED = 6  # an experiment's claim did not hold, or it judged nothing
    INTERRUPTED = 130  # Ctrl-C

    @classmethod
    def table(cls) -> str:
        return ", ".join(f"{c.value} {c.describe()}" for c in cls)

    def describe(self) -> str:
        return {
            ExitCode.OK: "ok",
            ExitCode.ERROR: "lab error",
            ExitCode.USAGE: "usage",
            ExitCode.NO_DOCKER: "Docker or Compose missing",
            ExitCode.PORT_TAKEN: "port taken",
            ExitCode.UNHEALTHY: "a service not healthy",
            ExitCode.CLAIM_FAILED: "a claim did not hold (or nothing was judged)",
            ExitCode.INTERRUPTED: "interrupted",
        }[self]


class LabError(Exception):
    """Root of every error the driver reports to a user."""

    exit_code = ExitCode.ERROR

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def line(self) -> str:
        return f"{self.what}; {self.fix}" if self.fix else self.what


# --- the environment ------------------------------------------------------------------


class DockerUnavailable(LabError):
    exit_code = ExitCode.NO_DOCKER


class ComposeMissing(LabError):
    exit_code = ExitCode.NO_DOCKER


class ComposeFailed(LabError):
    def __init__(self, command: list[str], output: str) -> None:
        self.tail = output.strip().splitlines()[-1] if output.strip() else "no output"
        super().__init__(
            f"`{' '.join(command)}` failed: {self.tail}", "run it by hand to see its full output"
        )
        self.command = command
        self.output = output


class PortTaken(LabError):
    exit_code = ExitCode.PORT_TAKEN

    def __init__(self, port: int, protocol: str, variable: str = "") -> None:
        super().__init__(
            f"port {port}/{protocol} on 127.0.0.1 is already taken by another program",
            "stop that program, or "
            + (
                f"set {variable} to a free port, or to empty for any free port"
                if variable
                else "publish it on another port in the Compose file"
            ),
        )
        self.port = port
        self.protocol = protocol
        self.variable = variable


class BaseImageError(LabError):
    """No Python base image could be found, pulled or built."""


class PicturesMissing(LabError):
    """matplotlib, which draws the pictures, is an extra: a first install goes without it."""

    def __init__(self) -> None:
        super().__init__(
            "pictures need matplotlib, which this install does not have",
            "install it with `pipx inject socklab matplotlib` or `pip install 'socklab[pictures]'`",
        )


class TimedOut(LabError):
    """A wait reached its deadline: what was awaited, and for how long."""

    def __init__(self, what: str, seconds: float, fix: str = "") -> None:
        super().__init__(f"{what}: no answer within {seconds:g} s", fix)
        self.seconds = seconds


# --- the lab ----------------------------------------------------------------------------


class TopologyError(LabError):
    """The Compose files do not describe a lab the driver understands."""

    exit_code = ExitCode.USAGE


class NotRunning(LabError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not running", "start the lab with `lab up`")


class Unhealthy(LabError):
    exit_code = ExitCode.UNHEALTHY

    def __init__(self, service: str, state: str, detail: str) -> None:
        super().__init__(
            f"service {service} did not become healthy ({state}): {detail}",
            f"see `docker compose logs {service}`",
        )
        self.service = service
        self.state = state
        self.detail = detail


class HelperFailed(LabError):
    """A helper container (capture, link change, netem) failed."""

    def __init__(self, name: str, argv: list[str], code: int, output: str) -> None:
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {code}"
        super().__init__(f"{' '.join(argv) or 'helper'} (in {name}) failed: {last}")
        self.argv = argv
        self.code = code
        self.output = output


class SessionError(LabError):
    """A program the driver runs attached inside a host failed or went away."""


class FaultError(LabError):
    """A fault could not be applied or undone."""


class LinkError(LabError):
    """An impairment could not be set or removed."""


class NetemMissing(LinkError):
    """The kernel has no sch_netem (the lab then uses its own, in user space)."""

    def __init__(self) -> None:
        super().__init__("this kernel has no netem (CONFIG_NET_SCH_NETEM is not set)")


class PacketError(LabError):
    """A capture could not be taken or read."""


class TraceError(LabError):
    """A process's system calls could not be traced."""


# --- what the user asked for ------------------------------------------------------------


class UsageError(LabError):
    exit_code = ExitCode.USAGE


class ScheduleError(UsageError):
    """A fault schedule file is wrong."""


class PredictionsError(UsageError):
    """A predictions file is wrong."""


class ExperimentFileError(UsageError):
    """A user's experiment file could not be loaded: the file and line say where."""


class ExperimentError(LabError):
    """An experiment could not be carried out (not: a claim did not hold)."""


class NothingJudged(LabError):
    """An experiment ended with no check at all: that is never a pass."""

    exit_code = ExitCode.CLAIM_FAILED


class DirtyTree(LabError):
    """A page of benchmarks would name a commit whose code did not produce its rows."""

    def __init__(self, changed: list[str] | None) -> None:
        if changed is None:
            what = "no commit to name (not a git checkout, or git did not answer)"
        else:
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            what = f"the tree has uncommitted changes ({', '.join(changed[:3])}{more})"
        super().__init__(
            f"refusing --markdown: {what}",
            "commit or set the changes aside, then run `socklab bench --markdown` again",
        )
