"""socklab from the built wheel, from any folder, as a user who is not root, and from
inside a container that holds only the installed wheel, the Docker CLI and the socket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from lab.engine import base_image
from lab.names import PROJECT
from tests.installed.conftest import PORTS, User, ok

ROOT = Path(__file__).resolve().parents[2]
CLI_PLUGINS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
)


def test_the_wheel_holds_lab_alone_and_the_whole_default_lab(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("socklab-")}
    assert tops == {"lab"}
    for carried in ("lab/compose.yaml", "lab/services/Dockerfile", "lab/services/.dockerignore"):
        assert carried in names
    assert "lab/services/servers/tcp_shout.py" in names
    assert "lab/examples/topologies/router/compose.yaml" in names
    assert "lab/examples/servers/seed_tcp.py" in names  # what `check` is shown on
    assert "lab/examples/assignments/echo.yaml" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    assert "socklab = lab.cli:main" in scripts
    assert "lab = lab.cli:main" in scripts


def test_pip_knows_only_socklab(learner: User, venv: Path, workspace: Path) -> None:
    shown = ok(learner.run([str(venv / "bin/pip"), "show", "-f", "socklab"], cwd=workspace))
    assert "Name: socklab" in shown
    installed = ok(learner.run([str(venv / "bin/pip"), "list", "--format=json"], cwd=workspace))
    assert not any(p["name"] in ("netlab", "lab", "services") for p in json.loads(installed))
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / "services").exists()
    assert (site / "lab/services/servers/udp_shout.py").is_file()
    assert not (site / "matplotlib").exists(), "pictures are an extra, not the first install"


@pytest.fixture(scope="module")
def empty(learner: User, workspace: Path) -> Path:
    return learner.folder(workspace, "empty")


@pytest.fixture(scope="module")
def as_user(
    learner: User, venv: Path, empty: Path, docker_client: docker.DockerClient, base: str
) -> Iterator[dict[str, str]]:
    """The environment the user's commands run with; the lab removed at the end."""
    env = {**PORTS, "COMPOSE_PROJECT_NAME": f"{PROJECT}-installed", "LAB_NET_PREFIX": "10.203.81"}
    yield env
    learner.run([str(venv / "bin/socklab"), "down"], cwd=empty, env=env)
    _assert_gone(docker_client, env["COMPOSE_PROJECT_NAME"])


def _assert_gone(client: docker.DockerClient, project: str) -> None:
    left = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )
    assert not left, f"left behind: {[c.name for c in left]}"


def test_a_user_in_the_docker_group_runs_the_lab_from_an_empty_folder(
    learner: User, venv: Path, empty: Path, as_user: dict[str, str]
) -> None:
    socklab = str(venv / "bin/socklab")
    assert not list(empty.iterdir())
    up = ok(learner.run([socklab, "up"], cwd=empty, env=as_user))
    assert "lab is up" in up
    assert "the default lab, carried in the package" in up
    assert not list(empty.iterdir()), "up wrote into the user's folder"
    status = ok(learner.run([socklab, "status", "--json"], cwd=empty, env=as_user))
    hosts = {h["host"] for h in json.loads(status)}
    assert {"apphost", "shouthost", "client"} <= hosts
    run = learner.run([socklab, "run", "dispatch", "--results", "results"], cwd=empty, env=as_user)
    ok(run)
    assert list((empty / "results").glob("dispatch-*.json")), run.stdout
    # the short name is the same command
    sent = ok(learner.run([str(venv / "bin/lab"), "send", "udp", "hi"], cwd=empty, env=as_user))
    assert "HI" in sent
    # a server of the learner's own, in their folder, judged by the installed command
    (empty / "mine.py").write_text((ROOT / "examples/servers/seed_udp.py").read_text())
    checked = learner.run(
        [socklab, "check", "mine.py", "--as", "udp-shout", "--results", "results"],
        cwd=empty,
        env=as_user,
    )
    assert checked.returncode == 6, checked.stdout + checked.stderr  # its datagrams cut short
    assert "FAIL  large" in checked.stdout
    assert list((empty / "results").glob("check-udp-shout-*.json"))
    # where the driver is not beside the engine, a helper in the engine's network
    # namespace sends instead: forced here, it must reach the same published port
    helper = {**as_user, "LAB_DOCKER_HOST_VIA": "helper"}
    via = learner.run([socklab, "-v", "send", "tcp", "hello"], cwd=empty, env=helper)
    assert "HELLO" in ok(via)
    assert "-script-docker-host-" in via.stderr
    assert "(no capability)" in via.stderr
    ok(learner.run([socklab, "down"], cwd=empty, env=as_user))


def test_init_writes_a_copy_that_is_the_lab_from_then_on(
    learner: User, venv: Path, workspace: Path, docker_client: docker.DockerClient, base: str
) -> None:
    socklab = str(venv / "bin/socklab")
    env = {**PORTS, "LAB_NET_PREFIX": "10.203.82"}
    mine = learner.folder(workspace, "mine")
    written = ok(learner.run([socklab, "init", "mylab"], cwd=mine, env=env))
    folder = mine / "mylab"
    assert (folder / "compose.yaml").is_file()
    assert (folder / "services/Dockerfile").is_file()
    assert (folder / "examples/topologies/router/compose.yaml").is_file()
    assert "next: cd mylab && socklab up" in written
    again = learner.run([socklab, "init", "mylab"], cwd=mine, env=env)
    assert again.returncode == 2
    assert again.stderr.startswith("socklab: ")
    assert "already holds compose.yaml" in again.stderr
    try:  # a project of its own, named after its folder: plainly the copy at work
        up = ok(learner.run([socklab, "up"], cwd=folder, env=env))
        assert "project mylab" in up
        assert "carried in the package" not in up
        ok(learner.run([socklab, "send", "tcp", "hello"], cwd=folder, env=env))
    finally:
        learner.run([socklab, "down"], cwd=folder, env=env)
    _assert_gone(docker_client, "mylab")


def _cli_plugin() -> Path:
    for folder in CLI_PLUGINS:
        if (Path(folder) / "docker-compose").is_file():
            return Path(folder) / "docker-compose"
    raise AssertionError(f"no docker-compose CLI plugin in {CLI_PLUGINS}")


def test_the_driver_in_a_container_with_only_the_socket(
    site: Path, docker_client: docker.DockerClient, learner: User, base: str
) -> None:
    """A dev container's case: the driver talks to the engine through its socket alone,
    in a network namespace of its own (none at all here), as a user who is not root."""
    docker_cli = shutil.which("docker")
    assert docker_cli is not None
    sock = "/var/run/docker.sock"
    shim = site.parent / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "socklab").write_text(
        "#!/usr/bin/python3\nimport sys\nfrom lab.cli import main\nsys.exit(main())\n"
    )
    (shim / "socklab").chmod(0o755)
    project = f"{PROJECT}-contained"
    env = {
        **PORTS,
        "COMPOSE_PROJECT_NAME": project,
        "LAB_NET_PREFIX": "10.203.83",
        "PYTHONPATH": "/opt/socklab",
        "PATH": "/opt/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
    }
    script = (
        "mkdir -p /tmp/empty && cd /tmp/empty && socklab up && socklab status && "
        "socklab run dispatch && socklab send tcp hello"  # from the Docker host: a helper
    )
    try:
        out = docker_client.containers.run(
            base,
            ["sh", "-c", script],
            network_mode="none",
            user=f"{learner.uid}:{learner.gid}",
            group_add=[str(os.stat(sock).st_gid)],
            environment=env,
            volumes={
                str(site): {"bind": "/opt/socklab", "mode": "ro"},
                str(shim): {"bind": "/opt/bin", "mode": "ro"},
                docker_cli: {"bind": "/usr/local/bin/docker", "mode": "ro"},
                str(_cli_plugin()): {
                    "bind": "/usr/local/lib/docker/cli-plugins/docker-compose",
                    "mode": "ro",
                },
                sock: {"bind": sock, "mode": "rw"},
            },
            labels={"socklab.purpose": "installed-tier"},
            remove=True,
            stdout=True,
            stderr=True,
        ).decode()
    except docker.errors.ContainerError as exc:
        raise AssertionError(f"inside the container: {exc.stderr!r}") from None
    finally:
        subprocess.run(
            ["docker", "compose", "-p", project, "down", "--volumes", "--timeout", "3"],
            capture_output=True,
            check=False,
        )
    assert "lab is up" in out
    assert "apphost" in out
    assert "shouthost" in out
    assert "result written to results/dispatch-" in out  # every claim held: exit 0 above
    assert "HELLO" in out
    _assert_gone(docker_client, project)


def test_the_official_base_is_picked_where_a_registry_has_given_it(
    learner: User, venv: Path, workspace: Path, docker_client: docker.DockerClient, base: str
) -> None:
    """The registry path, with no registry: the local base tagged as the official image
    stands for a pull that succeeded, and `up` must choose it over the local one (where
    the official image is here already, `up` must simply choose it)."""
    repository, tag = base_image.OFFICIAL.split(":")
    had = any(base_image.OFFICIAL in i.tags for i in docker_client.images.list(repository))
    local = docker_client.images.get(base if had else base_image.local_tag())
    folder = learner.folder(workspace, "official")
    env = {**PORTS, "COMPOSE_PROJECT_NAME": f"{PROJECT}-official", "LAB_NET_PREFIX": "10.203.84"}
    socklab = str(venv / "bin/socklab")
    if not had:
        local.tag(repository, tag)
    try:
        up = ok(learner.run([socklab, "up"], cwd=folder, env=env))
        assert f"base image {base_image.OFFICIAL}, official path" in up
        built = docker_client.images.get("socklab-services:latest")
        assert built.labels.get(base_image.BASE_LABEL) == base_image.OFFICIAL
    finally:
        learner.run([socklab, "down"], cwd=folder, env=env)
        if not had:
            docker_client.images.remove(base_image.OFFICIAL)  # the tag only: the base stays
    _assert_gone(docker_client, env["COMPOSE_PROJECT_NAME"])
    assert docker_client.images.get(str(local.id)).id == local.id
