"""Socket tables and system-call timelines for people; traced calls put on the lab's clock."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console

from lab.services.probes.porttable import HostSocket
from lab.services.probes.sockscript import Event
from lab.syscalls.strace import Syscall, parse
from lab.syscalls.trace import _journal, script_calls
from lab.views.sockets import Folded, calls_table, fold, program, shown, socket_table


def row(state: str, local: str, remote: str, pid: int | None = None, fd: int | None = None) -> HostSocket:  # fmt: skip
    return HostSocket("tcp", state, local, remote, 0, 0, "", 0 if pid is None else 7, pid, fd,
                      "python3 -m services.servers.tcp_shout" if pid else "", "tcp-shout" if pid else "")  # fmt: skip


def text_of(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_ownerless_time_waits_alike_are_folded() -> None:
    healthchecks = [row("TIME_WAIT", f"127.0.0.1:{p}", "127.0.0.1:8080") for p in range(5)]
    ours = row("TIME_WAIT", "10.203.0.100:4000", "10.203.0.20:8080")
    listening = row("LISTEN", "0.0.0.0:8080", "0.0.0.0:0", pid=6, fd=6)
    folded = fold([listening, *healthchecks, ours])
    assert folded[0] == listening
    assert folded[1] == Folded(healthchecks[0], 5)
    assert folded[2] == ours  # one alone is shown as it is
    shown_text = text_of(socket_table("shouthost", [listening, *healthchecks, ours]))
    assert "TIME_WAIT x5" in shown_text
    assert "127.0.0.1:*" in shown_text
    assert "tcp-shout (pid 6)" in shown_text
    assert "(kernel: no process)" in shown_text
    assert text_of(socket_table("x", healthchecks, folded=False)).count("TIME_WAIT") == 5


def test_a_held_socket_in_no_table_is_shown_with_its_fd() -> None:
    held = HostSocket("", "", "", "", 0, 0, "", 99, 33, 3, "python3 -m services.probes.sockscript --serve 1.0", "")  # fmt: skip
    out = text_of(socket_table("client", [held]))
    assert "not yet bound, or closed" in out
    assert "sockscript (pid 33)" in out


def test_program_names() -> None:
    assert program("python3 -m services.probes.sockscript --serve 5.0") == "sockscript"
    assert program("/usr/bin/redis-server *:6379") == "redis-server"
    assert program("") == "?"


def test_shown_makes_control_bytes_visible() -> None:
    assert shown("hi\r\n") == "hi\\r\\n"
    assert shown("\x00\udcff") == "\\x00\\xff"
    assert shown("x" * 40).endswith("…")


def test_the_timeline_orders_by_when_a_call_returned() -> None:
    # The client's recv began before the server's send, and returned after it.
    recv = Event(0.010, "client", "c", "tcp", "recv", "a:1", "b:2", "ok", 5, "HELLO", dt=0.040)
    send = Syscall(0.030, 6, "sendto", '7, "HELLO", 5, 0, NULL, 0', 5, fd=7, data="HELLO",
                   dt=0.0001, process="tcp-shout")  # fmt: skip
    out = text_of(calls_table([send], [recv]))
    assert out.index("sendto") < out.index("recv ")
    assert "50.00" in out  # the recv, at 10 ms + 40 ms


def test_journal_items_are_put_on_the_traces_clock() -> None:
    event = Event(0.5, "client", "c", "tcp", "connect", "a:1", "b:2", "ok")
    call = Syscall(0.25, None, "socket", "AF_INET", 3, new_fd=3, process="client")
    items: list[dict[str, Any]] = [
        {"kind": "socket", "t0": 100.0, "events": [asdict(event)]},
        {"kind": "syscalls", "t0": 101.0, "calls": [asdict(call)]},
        {"kind": "fault", "t0": 100.0},
        {"kind": "socket", "t0": None, "events": [asdict(event)]},  # no clock: left out
    ]
    events, calls = _journal(iter(items), t0=99.0)
    assert [e.t for e in events] == [1.5]
    assert [c.t for c in calls] == [2.25]


def test_a_traced_script_starts_at_its_first_socket() -> None:
    text = (
        "1.000 close(3) = 0 <0.1>\n"  # the interpreter, reading its modules
        "1.100 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3 <0.1>\n"
        "1.200 close(3) = 0 <0.1>\n"
        "1.300 +++ exited with 0 +++\n"
    )
    calls = script_calls(text, origin=1.0, host="client")
    assert [(c.name, c.process) for c in calls] == [
        ("socket", "client"),
        ("close", "client"),
        ("exit", "client"),
    ]
    assert calls[0].t == 0.1
    assert parse(text)[0].name == "close"
