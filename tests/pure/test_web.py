"""The web view's pure parts: who may drive the lab, pcap read as it streams, replays of
recorded results (no Docker, no browser)."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from lab.web.guard import Guard
from lab.web.replay import replayable, timeline, topology_of
from lab.web.server import local_ipv4, local_ipv6, own_names

FIXTURES = Path(__file__).parent / "fixtures" / "results"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("LOCALHOST:8765", True),
        ("[::1]:8765", True),
        ("127.0.0.1:9999", False),  # another port: another server
        ("evil.example:8765", False),  # DNS rebinding: a foreign name on our address
        ("127.0.0.1", False),
        (None, False),
    ],
)
def test_only_requests_that_name_this_server_are_served(host: str | None, ok: bool) -> None:
    assert Guard(8765, token="t").host_ok(host) is ok


def test_origins_and_tokens() -> None:
    guard = Guard(8765, token="secret")
    assert guard.origin_ok(None)  # curl, scripts: no browser, no Origin
    assert guard.origin_ok("http://127.0.0.1:8765")
    assert not guard.origin_ok("http://evil.example:8765")
    assert not guard.origin_ok("https://127.0.0.1:8765")
    assert guard.token_ok("secret")
    assert not guard.token_ok("secreT")
    assert not guard.token_ok(None)
    assert Guard(8765).token != Guard(8765).token  # a new one every run


def test_binding_beyond_loopback_is_named_in_the_address_and_the_allowed_hosts() -> None:
    assert Guard(8765).loopback_only
    wide = Guard(8765, bind="10.1.2.3", token="t")
    assert not wide.loopback_only
    assert wide.address() == "http://10.1.2.3:8765/?token=t"
    assert wide.host_ok("10.1.2.3:8765")


def test_bound_to_every_address_it_answers_to_this_machines_names_and_no_other() -> None:
    own = ("192.0.2.2", "172.17.0.1", "127.0.1.1", "vm", "vm.example.org")
    guard = Guard(8765, bind="0.0.0.0", token="t", own=own)
    for host in ("192.0.2.2:8765", "172.17.0.1:8765", "VM:8765", "vm.example.org:8765"):
        assert guard.host_ok(host), host
    assert guard.host_ok("127.0.0.1:8765")  # this machine's own browser, as before
    for host in ("evil.example:8765", "192.0.2.3:8765", "192.0.2.2:9999", "0.0.0.0:8765"):
        assert not guard.host_ok(host), host  # a rebinding page still names itself
    assert guard.origin_ok("http://192.0.2.2:8765")
    # What to open: each address another machine can reach, never 0.0.0.0 or loopback.
    assert guard.addresses() == [
        "http://192.0.2.2:8765/?token=t",
        "http://172.17.0.1:8765/?token=t",
    ]
    # Knowing none of its names, a wildcard server answers to loopback names only, and
    # shows 127.0.0.1 (it once showed http://0.0.0.0:8765/).
    bare = Guard(8765, bind="0.0.0.0", token="t")
    assert not bare.host_ok("192.0.2.2:8765")
    assert bare.address() == "http://127.0.0.1:8765/?token=t"
    six = Guard(8765, bind="::", token="t", own=("fd00::2", "fe80::1", "::1", "vm"))
    assert six.host_ok("[fd00::2]:8765")
    assert six.host_ok("vm:8765")
    assert not six.host_ok("fd00::2:8765")  # a Host names an IPv6 address in brackets
    assert six.addresses() == ["http://[fd00::2]:8765/?token=t"]  # link-local needs a zone
    assert Guard(8765, bind="::1", token="t").address() == "http://[::1]:8765/?token=t"


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 4
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.215.0.0/24 2 0 2
        |-- 10.215.0.0
           /24 link UNICAST
        |-- 10.215.0.1
           /32 host LOCAL
        |-- 10.215.0.7
           /32 host LOCAL
        |-- 10.215.0.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.0
           /8 host LOCAL
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 4
     |-- 10.215.0.1
        /32 host LOCAL
"""

IF_INET6 = """fd000000000000000000000000000002 04 40 00 82     eth0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_this_machines_addresses_are_read_from_the_kernels_tables() -> None:
    # A secondary address (10.215.0.7) counts; a network, a broadcast address, 127/8's
    # route, are no address of an interface.
    assert local_ipv4(FIB_TRIE) == {"10.215.0.1", "10.215.0.7", "127.0.0.1"}
    assert local_ipv6(IF_INET6) == {"fd00::2", "fe80::fc:ff:fe00:1", "::1"}
    assert own_names("127.0.0.1") == ()
    assert own_names("10.1.2.3") == ()


def test_a_recorded_result_replays_without_docker() -> None:
    path = FIXTURES / "dispatch.json"
    data = json.loads(path.read_text())
    topo = topology_of(data)
    assert {h["name"] for h in topo["hosts"]} == {"apphost", "shouthost", "client"}
    owners = {
        (r["protocol"], r["port"]): r["service"]
        for r in next(h for h in topo["hosts"] if h["name"] == "apphost")["ports"]
        if r["pid"]
    }
    assert owners[("tcp", 80)] == "http"
    items = timeline(path, data)
    assert [i["t"] for i in items] == sorted(i["t"] for i in items)
    assert len([i for i in items if i["kind"] == "socket"]) == len(data["events"])
    whole = replayable(0, path)
    assert whole["experiment"] == "dispatch"
    assert whole["ladder"] == []  # no capture was saved beside it


def test_a_failure_matrix_replays_its_faults_on_the_time_line() -> None:
    path = FIXTURES / "failures.json"
    items = timeline(path, json.loads(path.read_text()))
    faults = [i["text"] for i in items if i["kind"] == "fault"]
    assert "process-crash begins" in faults
    assert "process-crash undone" in faults


# --- stepping: frames kept in the result itself, and what each receiver decided ---


def _syn_and_rst(client: str, server: str) -> list[bytes]:
    """A SYN to port 9999 and the RST that refuses it, written field by field."""

    def segment(
        src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int
    ) -> bytes:
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 502, 0, 0)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0x4000, 64, 6, 0,
            socket.inet_aton(src), socket.inet_aton(dst),
        )  # fmt: skip
        return bytes(6) + bytes(6) + b"\x08\x00" + ip + tcp

    return [
        segment(client, server, 40000, 9999, 0x02, 41, 0),
        segment(server, client, 9999, 40000, 0x14, 0, 42),
    ]


def _with_frames(tmp_path: Path, stepped: bool) -> tuple[Path, dict[str, Any]]:
    """The dispatch fixture with two frames kept in ``facts["frames"]`` and no pcap."""
    data = json.loads((FIXTURES / "dispatch.json").read_text())
    hosts = data["lab"]["hosts"]
    client, shout = hosts["client"]["ip"], hosts["shouthost"]["ip"]
    syn, rst = _syn_and_rst(client, shout)
    data["facts"]["frames"] = [
        {"number": 1, "t": 0.5, "hex": syn.hex(), "capture": "bridge of lab"},
        {"number": 2, "t": 0.25, "hex": rst.hex(), "capture": "client lo"},
        {"number": 3, "t": 0.75, "hex": "not hex"},  # one unreadable frame hides no other
    ]
    data["facts"]["stepped"] = stepped
    data.pop("capture", None)
    path = tmp_path / "dispatch-frames.json"
    path.write_text(json.dumps(data))
    return path, data


def test_frames_kept_in_the_result_join_the_time_line(tmp_path: Path) -> None:
    path, data = _with_frames(tmp_path, stepped=True)
    items = timeline(path, data)
    frames = [i for i in items if i["kind"] == "frame"]
    assert [f["frame"]["number"] for f in frames] == [2, 1]  # in time order, not listing order
    assert [f["t"] for f in frames] == pytest.approx([0.25, 0.5])
    assert [f["frame"]["capture"] for f in frames] == ["client lo", "bridge of lab"]
    assert frames[1]["frame"]["from"] == "client"  # names from the lab's hosts: no capture
    assert frames[1]["frame"]["to"] == "shouthost"
    detail = frames[1]["detail"]
    assert detail["hex"] == data["facts"]["frames"][0]["hex"]  # the bytes, as kept
    assert detail["layers"][2]["spans"]["dst_port"] == [36, 38]
    # On this made-up clock the SYN came after its RST: the RST refused no SYN seen yet,
    # and a SYN with no answer after it is decided nothing.
    assert frames[0]["decision"] == (
        "shouthost's kernel: TCP port 9999: the connection is reset (RST)"
    )
    assert frames[1]["decision"] is None
    whole = replayable(0, path)
    assert whole["stepped"] is True
    assert whole["captured"] is True
    assert whole["names"][data["lab"]["hosts"]["shouthost"]["ip"]] == "shouthost"
    assert any("TCP" in line for line in whole["ladder"])


def test_a_refusal_seen_in_the_frames_is_the_decision_of_both(tmp_path: Path) -> None:
    path, data = _with_frames(tmp_path, stepped=False)
    data["facts"]["frames"][1]["t"] = 0.6  # the RST after the SYN
    frames = [i for i in timeline(path, data) if i["kind"] == "frame"]
    assert [f["decision"] for f in frames] == [
        "shouthost's kernel: no socket on TCP 9999 → RST"
    ] * 2
    assert summary_of(path, data)["stepped"] is False


def summary_of(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    from lab.web.replay import summary

    return summary(0, path, data)


def test_a_runs_own_frames_win_over_a_pcap_beside_it_which_serves_otherwise(
    tmp_path: Path,
) -> None:
    from lab.services.helpers.capture import file_header, record

    path, data = _with_frames(tmp_path, stepped=False)
    syn, rst = _syn_and_rst(
        data["lab"]["hosts"]["client"]["ip"], data["lab"]["hosts"]["shouthost"]["ip"]
    )
    t0 = float(data["t0_monotonic"])
    path.with_suffix(".pcap").write_bytes(
        file_header()
        + record(int(t0) + 1, 0, syn, len(syn))
        + record(int(t0) + 1, 1000, rst, len(rst))
    )
    # `run --capture` of a run that keeps its own frames: those know which wire they were on.
    frames = [i for i in timeline(path, data) if i["kind"] == "frame"]
    assert all("capture" in f["frame"] for f in frames)
    del data["facts"]["frames"]
    frames = [i for i in timeline(path, data) if i["kind"] == "frame"]
    assert [f["frame"]["number"] for f in frames] == [1, 2]  # the pcap's
    assert "capture" not in frames[0]["frame"]
    assert frames[0]["decision"] == "shouthost's kernel: no socket on TCP 9999 → RST"


def test_a_live_frame_comes_with_what_the_frames_kept_show() -> None:
    """The server's /api/frames/N: the frame, and its decision from the frames kept alone."""
    from types import SimpleNamespace

    from lab.packets.dissect import dissect
    from lab.packets.view import frame_json
    from lab.web.server import frame_decided

    client, shout = "10.203.0.100", "10.203.0.20"
    frames = [dissect(raw, 0.0, n) for n, raw in enumerate(_syn_and_rst(client, shout), 1)]
    kept = [{"number": f.number, "frame": f} for f in frames]

    def detail(number: int) -> dict[str, Any]:
        return frame_json(next(f for f in frames if f.number == number))

    live: Any = SimpleNamespace(
        frames=kept,
        frame_detail=detail,
        lab=SimpleNamespace(address_names=lambda: {client: "client", shout: "shouthost"}),
    )
    answered = frame_decided(live, 1)
    assert answered["number"] == 1
    assert answered["decision"] == "shouthost's kernel: no socket on TCP 9999 → RST"
    assert answered["layers"][2]["spans"]["dst_port"] == [36, 38]
