"""Tier 5: socklab as a user gets it. The wheel is built and installed into a fresh
venv, and run from an empty folder by a user who is not root (in the docker group, made
here when the tier runs as root), then again from inside a container that holds only the
installed wheel, the Docker CLI and the engine's socket.

Each lab here has a project, subnet and ports of its own (Docker picks the ports), so
the other tiers' labs are never in the way; all of it is removed at the end.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from lab.engine import base_image
from lab.progress import silent
from tests.conftest import engine_for

ROOT = Path(__file__).resolve().parents[2]
USER = "socklab-learner"  # made when the tier runs as root: in the docker group, no more
PYTHON = "/usr/bin/python3"  # the system's: a user cannot reach root's own Pythons
# Docker picks every published port: a lab the user runs, or another tier's, stays apart.
PORTS = {
    v: "" for v in ("LAB_HTTP_PORT", "LAB_DB_PORT", "LAB_TCP_SHOUT_PORT", "LAB_UDP_SHOUT_PORT")
}


@dataclass
class User:
    """Someone who runs commands: as themselves, with only the environment given."""

    name: str
    uid: int
    gid: int
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        wrap: list[str] = []
        if os.geteuid() != self.uid:
            wrap = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        return subprocess.run(
            [*wrap, *argv],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def folder(self, parent: Path, name: str) -> Path:
        path = parent / name
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, self.uid, self.gid)
        return path


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must succeed; its whole story when it did not."""
    assert done.returncode == 0, (
        f"{done.args} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return engine_for("installed")


@pytest.fixture(scope="session")
def base(docker_client: docker.DockerClient) -> str:
    """The base image `up` will use: the official one where it is here or can be pulled,
    else the local one, which root builds once (debootstrap), as on a machine with no
    registry. A user who is not root finds it built, or this tier cannot run."""
    if os.geteuid() == 0:
        return base_image.ensure(docker_client, None, silent).image
    chosen = base_image.plan(
        os.environ.get(base_image.ENV_KEY),
        lambda name: bool(docker_client.images.list(name=name)),
        lambda name: False,
        base_image.local_tag(),
    )
    if chosen.action == "build":
        pytest.fail(f"no base image here, and building {chosen.image} needs root", pytrace=False)
    return chosen.image


@pytest.fixture(scope="session")
def learner() -> User:
    """A user in the docker group and nothing more (made here when run as root)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return User(me.pw_name, me.pw_uid, me.pw_gid, Path(me.pw_dir), _base_env(Path(me.pw_dir)))
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--groups", "docker", "--shell", "/bin/sh", USER],
            check=True,
        )
    entry = pwd.getpwnam(USER)
    assert entry.pw_uid != 0
    assert USER in grp.getgrnam("docker").gr_mem, f"{USER} is not in the docker group"
    home = Path(entry.pw_dir)
    return User(USER, entry.pw_uid, entry.pw_gid, home, _base_env(home))


def _base_env(home: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("LANG", "TERM", "DOCKER_HOST") if k in os.environ}
    return {**keep, "HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "COLUMNS": "150"}


@pytest.fixture(scope="session")
def workspace(learner: User, tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("installed")
    top.chmod(0o755)
    for parent in top.parents:  # the user must be able to walk down to it
        if str(parent).startswith(("/tmp/", "/var/tmp/")) and parent.stat().st_mode & 0o005 != 5:
            parent.chmod(parent.stat().st_mode | 0o005)
    return learner.folder(top, "work")


@pytest.fixture(scope="session")
def wheel(workspace: Path) -> Path:
    """The wheel, as `pip wheel .` builds it from this checkout."""
    out = workspace / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("socklab-*.whl")
    found.chmod(0o644)
    out.chmod(0o755)
    return found


@pytest.fixture(scope="session")
def venv(learner: User, workspace: Path, wheel: Path) -> Path:
    """A fresh venv of the user's, with the wheel and its dependencies from PyPI."""
    where = workspace / "venv"
    ok(learner.run([PYTHON, "-m", "venv", str(where)], cwd=workspace))
    ok(learner.run([str(where / "bin/pip"), "install", "-q", str(wheel)], cwd=workspace))
    return where


@pytest.fixture(scope="session")
def site(workspace: Path, wheel: Path, venv: Path) -> Iterator[Path]:
    """The wheel and its dependencies installed into a folder, for a container's Python
    (Debian's, the same minor version as the system's, whose venv's pip puts them there)."""
    target = workspace / "site"
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    yield target
    shutil.rmtree(target, ignore_errors=True)
