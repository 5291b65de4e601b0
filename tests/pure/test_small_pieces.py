"""Small pure pieces: errno names, redis-cli style replies, Compose error text."""

from __future__ import annotations

import errno
import socket

import pytest

from lab.engine.compose import port_in_use
from lab.errors import ComposeFailed, PortTaken
from lab.services.probes.sockscript import outcome_of
from lab.services.protocols.resp import Error, Reply, Simple
from lab.traffic.clients import show_reply


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "ECONNREFUSED"),
        (BrokenPipeError(errno.EPIPE, "broken pipe"), "EPIPE"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "ECONNRESET"),
        (TimeoutError("timed out"), "timeout"),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "unresolved (Name or service not known)",
        ),
        (OSError(errno.EADDRINUSE, "in use"), "EADDRINUSE"),
    ],
)
def test_outcome_names(exc: BaseException, name: str) -> None:
    assert outcome_of(exc) == name


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (Simple("OK"), "OK"),
        (Error("ERR x"), "(error) ERR x"),
        (3, "(integer) 3"),
        (b"hi", '"hi"'),
        (None, "(nil)"),
        ([], "(empty array)"),
        ([b"a", 1], '1) "a"\n2) (integer) 1'),
    ],
)
def test_show_reply_like_redis_cli(reply: Reply, text: str) -> None:
    assert show_reply(reply) == text


@pytest.mark.parametrize(
    ("output", "port"),
    [
        (
            "Error response from daemon: driver failed programming external connectivity on "
            "endpoint socklab-apphost-1: Bind for 127.0.0.1:8000 failed: port is already allocated",
            8000,
        ),
        (
            "Error starting userland proxy: listen tcp4 127.0.0.1:6379: bind: address already in use",
            6379,
        ),
        ("network socklab_labnet not found", None),
    ],
)
def test_port_in_use_is_recognised(output: str, port: int | None) -> None:
    assert port_in_use(output) == port


def test_errors_carry_their_data_and_one_line() -> None:
    taken = PortTaken(8000, "tcp", "LAB_HTTP_PORT")
    assert (taken.port, taken.variable, taken.exit_code) == (8000, "LAB_HTTP_PORT", 4)
    assert "\n" not in taken.line()
    assert "LAB_HTTP_PORT" in taken.line()
    failed = ComposeFailed(["docker", "compose", "up"], "step 1\nstep 2\nthe real reason\n")
    assert failed.line().startswith("`docker compose up` failed: the real reason")


def test_default_gateway_from_proc_net_route() -> None:
    from lab.backends.model import default_gateway

    table = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100CB0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000CB0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert default_gateway(table) == "10.203.0.1"
    assert default_gateway(table.splitlines()[0] + "\n") is None


@pytest.mark.parametrize(
    ("engine", "here", "beside"),
    [
        ("vm", "vm", True),  # the engine on this machine: 127.0.0.1 is where it publishes
        ("docker-desktop", "ada-mac", False),  # Docker Desktop's VM
        ("ci-host", "4f2a9c1d7e0b", False),  # a dev container: its hostname is its id
    ],
)
def test_the_driver_is_beside_the_engine_only_on_its_machine(
    engine: str, here: str, beside: bool
) -> None:
    from lab.engine.docker_client import engine_here

    assert engine_here(engine, here) is beside


@pytest.mark.parametrize(("chosen", "beside"), [("direct", True), ("helper", False)])
def test_where_docker_host_sends_run_can_be_chosen(
    chosen: str, beside: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import cast

    import docker

    from lab.engine.docker_client import PLACE_ENV, beside_engine

    monkeypatch.setenv(PLACE_ENV, chosen)
    assert beside_engine(cast(docker.DockerClient, None)) is beside  # the engine not asked
