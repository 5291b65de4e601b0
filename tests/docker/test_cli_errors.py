"""The `lab` command's one-line errors and its cleanup after Ctrl-C, as a user meets them."""

from __future__ import annotations

import signal
import socket
import time

import docker
import pytest

from lab.backends.engine import Engine
from lab.errors import TimedOut
from lab.progress import silent
from tests.docker.conftest import ENV, PROJECT, make_lab, run_lab_cli, start_lab_cli, wait_for


def test_port_taken_is_one_line_and_nothing_is_created(docker_client: docker.DockerClient) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**ENV, "LAB_NET_PREFIX": "10.203.78", "LAB_HTTP_PORT": str(port)}
        proc = start_lab_cli("-p", "socklab-porttest", "up", env=env)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"port {port}/tcp on 127.0.0.1 is already taken" in lines[0]
    assert "LAB_HTTP_PORT" in lines[0]
    assert not make_lab(docker_client, "socklab-porttest", env).owned()


def test_ctrl_c_during_up_removes_what_was_started(docker_client: docker.DockerClient) -> None:
    env = {**ENV, "LAB_NET_PREFIX": "10.203.79"}
    lab = make_lab(docker_client, "socklab-interrupt", env)
    lab.down()
    proc = start_lab_cli("-p", "socklab-interrupt", "up", env=env)
    try:
        wait_for(lambda: bool(lab.owned().containers), "the first container", timeout=300)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not lab.owned(), f"left behind after Ctrl-C: {lab.owned()}"


def test_a_service_that_is_down_is_one_line_and_exit_5(lab: Engine) -> None:
    lab.container("db").kill()
    try:
        proc = start_lab_cli("-p", PROJECT, "run", "dispatch", env=ENV)
        _, err = proc.communicate(timeout=120)
    finally:
        lab.container("db").start()
        lab.wait_healthy(silent)
    assert proc.returncode == 5
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lab: service db did not become healthy (exited with code 137)")


def test_no_docker_command_is_one_line_and_exit_3() -> None:
    # The SDK reaches the engine through its socket; `up` also needs the docker CLI (Compose).
    proc = start_lab_cli("-p", "socklab-nocli", "up", env={"PATH": "/nonexistent"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0] == "lab: the docker command is not installed; install Docker Engine"


def test_a_frozen_db_ends_send_and_bench_in_one_line_not_a_hang(lab: Engine) -> None:
    lab.container("db").pause()
    try:
        sent = run_lab_cli("-p", PROJECT, "send", "db", "PING", timeout=60)
        bench = run_lab_cli("-p", PROJECT, "bench", "redis", "--tiny", timeout=120)
    finally:
        lab.container("db").unpause()
        lab.wait_healthy(silent)
    assert sent.returncode == 1
    assert "failed: recv_all: timeout" in sent.stdout
    assert bench.returncode == 5
    (line,) = bench.stderr.strip().splitlines()
    assert line.startswith("lab: service db did not become healthy (paused)")


def test_every_command_in_a_container_has_a_deadline(lab: Engine) -> None:
    started = time.monotonic()
    with pytest.raises(TimedOut, match=r"`sleep 30` in client: no answer within 1 s"):
        lab.run_in("client", ["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 10
