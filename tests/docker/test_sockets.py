"""Sockets as file descriptors, TCP states and system calls, on the real lab: `lab sockets`
during a held connection and after it closed, `lab trace` beside a `lab send` (and after a
Ctrl-C) leaving no helper, a traced client, and `lab run sockets`."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import lab as socklab
from lab.backends.engine import Engine
from lab.backends.model import PROJECT_LABEL
from lab.engine.helpers import ROLE, ROLE_LABEL
from tests.docker.conftest import PROJECT, run_lab_cli, settled, start_lab_cli, wait_for


def helpers_left(lab: Engine) -> list[str]:
    filters = {"label": [f"{PROJECT_LABEL}={PROJECT}", f"{ROLE_LABEL}={ROLE}"]}
    return [c["Names"][0] for c in lab.client.api.containers(all=True, filters=filters)]


def sockets_of(host: str) -> list[dict[str, Any]]:
    done = run_lab_cli("-p", PROJECT, "sockets", host, "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_sockets_shows_the_held_connection_with_its_owner_and_fd_then_time_wait(
    net: socklab.Lab,
) -> None:
    shout = f"{net.host('shouthost').ip}:8080"
    with net.session("client") as s:
        s.step(op="socket", sock="c", type="tcp")
        (connected,) = s.step(op="connect", sock="c", host="tcp-shout", port=8080)
        s.step(op="sendall", sock="c", data="held")
        s.step(op="recv", sock="c")
        mine = connected.local
        held = [r for r in sockets_of("shouthost") if r["remote"] == mine]
        assert len(held) == 1, held
        assert held[0]["state"] == "ESTABLISHED"
        assert held[0]["local"] == shout
        assert held[0]["service"] == "tcp-shout"
        assert isinstance(held[0]["pid"], int)
        listener = next(
            r for r in sockets_of("shouthost") if r["state"] == "LISTEN" and r["local"] == "0.0.0.0:8080"
        )  # fmt: skip
        assert held[0]["fd"] not in (None, listener["fd"])  # accept's new fd, not the listener's
        table = run_lab_cli("-p", PROJECT, "sockets", "shouthost", timeout=120)
        assert table.returncode == 0, table.stderr
        line = next(x for x in table.stdout.splitlines() if mine in x)
        assert "ESTABLISHED" in line
        assert f"tcp-shout (pid {held[0]['pid']})" in line
        assert f" {held[0]['fd']} " in line
        s.step(op="close", sock="c")  # the client closes first
        wait_for(
            lambda: any(
                r["local"] == mine and r["state"] == "TIME_WAIT" for r in sockets_of("client")
            ),
            "TIME_WAIT on the side that closed first",
            timeout=10,
        )
    (time_wait,) = [r for r in sockets_of("client") if r["local"] == mine]
    assert (time_wait["remote"], time_wait["pid"], time_wait["fd"]) == (shout, None, None)
    assert time_wait["timer"].startswith("timewait ")
    assert not [r for r in sockets_of("shouthost") if r["remote"] == mine]  # the passive side


def ready_line(stream: IO[str] | None) -> str:
    """The line `lab trace` prints once strace is attached (empty: it ended first)."""
    assert stream is not None
    return stream.readline()


@pytest.fixture
def tracing(lab: Engine) -> Iterator[subprocess.Popen[str]]:
    proc = start_lab_cli("-p", PROJECT, "trace", "tcp-shout", "--for", "6", "--json")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def test_trace_shows_the_servers_calls_beside_the_send_and_leaves_no_helper(
    lab: Engine, tracing: subprocess.Popen[str]
) -> None:
    line = ready_line(tracing.stderr)
    assert line.startswith("tracing tcp-shout (pid "), line + tracing.stderr.read()  # type: ignore[union-attr]
    assert any("trace" in name for name in helpers_left(lab))
    sent = run_lab_cli("-p", PROJECT, "send", "tcp", "hello", timeout=120)
    assert sent.returncode == 0, sent.stderr
    out, err = tracing.communicate(timeout=120)
    assert tracing.returncode == 0, err
    trace = json.loads(out)
    calls = trace["calls"]
    received = next(c for c in calls if c["name"] == "recvfrom" and c["data"] == "hello")
    fd = received["fd"]
    accepted = [
        c
        for c in calls
        if c["name"] in ("accept", "accept4") and c["new_fd"] == fd and c["t"] < received["t"]
    ][-1]  # the healthchecks' connections get accepted too, before and after
    assert accepted["fd"] not in (None, fd)  # the listening socket's own fd
    later = [c for c in calls if c["fd"] == fd and c["t"] > received["t"]]
    closed = next(i for i, c in enumerate(later) if c["name"] == "close")
    assert [(c["name"], c["data"]) for c in later[: closed + 1]] == [
        ("sendto", "HELLO"),
        ("recvfrom", ""),  # EOF: the client's FIN
        ("close", None),
    ]
    assert later[closed]["result"] == 0
    # The client's side, from the journal, on the same clock: its send before the server's recv.
    sendall = next(e for e in trace["events"] if e["op"] == "sendall" and e["data"] == "hello")
    assert sendall["t"] < received["t"] + received["dt"]
    assert helpers_left(lab) == []


def test_trace_table_and_a_traced_client(net: socklab.Lab, lab: Engine) -> None:
    proc = start_lab_cli("-p", PROJECT, "trace", "udp", "--for", "5")
    try:
        assert ready_line(proc.stdout).startswith("tracing udp-shout")
        sent = run_lab_cli(
            "-p", PROJECT, "send", "udp", "traced", "--syscalls", "--unconnected", timeout=120
        )
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sent.returncode == 0, sent.stderr
    assert "(from client, traced)" in sent.stdout  # the client host: traced inside the lab
    client_lines = sent.stdout.splitlines()
    assert any("socket" in x and "→ 3" in x for x in client_lines)
    assert any("sendto" in x and "traced" in x and " 3 " in x for x in client_lines)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    server = [x for x in lines if "udp-shout" in x and "recvfrom" in x and "traced" in x]
    client = [x for x in lines if x.count("client") and "sendto" in x and "traced" in x]
    assert server, out
    assert client, out  # the traced client's own calls, from the journal
    assert lines.index(client[0]) < lines.index(server[0])
    assert helpers_left(lab) == []


def test_ctrl_c_during_a_trace_leaves_no_helper(lab: Engine) -> None:
    proc = start_lab_cli("-p", PROJECT, "trace", "tcp-shout", "--for", "120")
    try:
        assert ready_line(proc.stdout).startswith("tracing tcp-shout")
        wait_for(lambda: bool(helpers_left(lab)), "the trace helper", timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "lab: interrupted"
    assert helpers_left(lab) == []
    # strace detached: tcp-shout goes on answering.
    again = run_lab_cli("-p", PROJECT, "send", "tcp", "still here", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "STILL HERE" in again.stdout


def test_tracing_from_a_script(net: socklab.Lab, lab: Engine) -> None:
    with net.process("tcp-shout").tracing() as trace:
        sent = net.send("tcp", "api", origin="client")
    assert sent.reply == "API"
    assert trace.pid == net.process("tcp-shout").pid
    assert "api" in [c.data for c in trace.calls if c.name == "recvfrom"]
    assert any(e.op == "connect" and e.host == "client" for e in trace.events)
    assert helpers_left(lab) == []


def test_run_sockets_passes(net: socklab.Lab, tmp_path: Path) -> None:
    done = run_lab_cli("-p", PROJECT, "run", "sockets", "--results", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    (path,) = tmp_path.glob("sockets-*.json")
    result = json.loads(path.read_text())
    assert result["passed"] is True
    assert [c["id"] for c in result["checks"]] == [
        "socket-is-fd",
        "accept-new-fd",
        "udp-one-fd",
        "time-wait",
        "close-wait",
        "dead-peer-fd",
        "reconnect",
        "reuseaddr",
    ]
    assert set(result["facts"]["traces"]) == {
        "tcp-shout",
        "udp-shout",
        "client",
        "shouthost (script)",
    }
    assert net.process("tcp-shout").state is not None
    settled(net.backend, ["tcp-shout"])
