"""The in-container helpers on loopback: numbered messages against the real shout servers,
socket scripts on the driver's clock, and the capture's file format read back."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lab.services.helpers.netadmin import interfaces
from lab.services.probes import numbered


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_numbered_messages_all_come_back_in_order(
    protocol: str, tcp_shout_port: int, udp_shout_port: int
) -> None:
    port = tcp_shout_port if protocol == "tcp" else udp_shout_port
    t0 = time.monotonic()
    report = numbered.run(protocol, "127.0.0.1", port, 50, 0.001, 2.0, t0)
    assert report["error"] == ""
    assert [n for n, _ in report["sent"]] == list(range(50))
    assert [n for n, _ in report["received"]] == list(range(50))
    sent = dict(report["sent"])
    assert all(t >= sent[n] for n, t in report["received"])  # an answer follows its message
    assert all(0 <= t < 10 for _, t in report["sent"])  # on the caller's clock, from t0
    assert set(report["kernel"]) == set(numbered.COUNTERS)  # what the kernel resent, and why


def test_tcp_stops_watching_only_when_its_kernel_has_nothing_left_to_send(
    tcp_shout_port: int,
) -> None:
    # Every answer in: no waiting after the last send beyond what the answers took.
    report = numbered.run("tcp", "127.0.0.1", tcp_shout_port, 10, 0.001, 5.0, time.monotonic())
    assert len(report["received"]) == 10
    assert report["waited_after_last_send_s"] < 5.0


def test_the_kernels_retransmission_counters_are_read_from_netstat() -> None:
    text = (
        "TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPDSACKRecv\n"
        "TcpExt: 0 7 3 1 2\n"
        "IpExt: InNoRoutes\nIpExt: 0\n"
    )
    assert numbered.netstat(text) == {
        "TCPTimeouts": 7,
        "TCPLossProbes": 3,
        "TCPLossProbeRecovery": 1,
        "TCPDSACKRecv": 2,
    }
    assert numbered.netstat("nothing here") == {}


def test_a_refused_connection_is_reported_not_raised(closed_port: int) -> None:
    report = numbered.run("tcp", "127.0.0.1", closed_port, 5, 0.001, 0.5, time.monotonic())
    assert report["error"].startswith("ConnectionRefusedError")
    assert report["received"] == []


def test_sockscript_counts_from_the_drivers_t0() -> None:
    t0 = time.monotonic() - 100.0  # as if the experiment had begun 100 s ago
    steps = [{"op": "socket", "sock": "u", "type": "udp"}, {"op": "close", "sock": "u"}]
    out = subprocess.run(
        [sys.executable, "-m", "services.probes.sockscript", "--t0", repr(t0), json.dumps(steps)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    times = [e["t"] for e in json.loads(out.stdout)]
    assert all(100.0 <= t < 130.0 for t in times)


def test_every_interface_but_loopback() -> None:
    assert interfaces(["lo", "eth0"]) == ["eth0"]
    assert interfaces(["eth1", "lo"]) == ["eth1"]  # after a host was reconnected
    assert interfaces(["lo"]) == []  # cut off: nothing to switch
    assert interfaces(["lo", "eth0", "eth1"]) == ["eth0", "eth1"]  # a router
