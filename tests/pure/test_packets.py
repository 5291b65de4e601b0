"""Frames taken apart, pcap files written and read back, and the ladder diagram: no Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from lab.packets import ladder
from lab.packets.checksum import Verdict
from lab.packets.dissect import Frame, dissect, flag_names, read
from lab.packets.report import events_of, faults_of
from lab.packets.view import checksum_counts, examples, frame_json, hex_view
from lab.services.helpers.capture import file_header, record
from lab.services.probes.sockscript import Event

CLIENT, SERVER = "10.203.0.100", "10.203.0.20"
SRC_MAC, DST_MAC = "02:42:0a:cb:00:64", "02:42:0a:cb:00:14"


def tcp_frame(flags: str = "PA", payload: bytes = b"hello") -> bytes:
    return bytes(
        Ether(src=SRC_MAC, dst=DST_MAC)
        / IP(src=CLIENT, dst=SERVER, ttl=64)
        / TCP(sport=40000, dport=8080, flags=flags, seq=1000, ack=2000, window=502)
        / payload
    )


def test_tcp_frame_layer_by_layer() -> None:
    frame = dissect(tcp_frame())
    assert [(x.name, x.start, x.end) for x in frame.layers] == [
        ("Ethernet", 0, 14),
        ("IPv4", 14, 34),
        ("TCP", 34, 54),
        ("data", 54, 59),
    ]
    eth, ip, tcp = frame.layers[:3]
    assert eth.fields == {"dst": DST_MAC, "src": SRC_MAC, "type": 0x0800}
    assert ip.fields["ttl"] == 64
    assert ip.fields["protocol"] == 6
    assert ip.fields["total_length"] == 45
    assert tcp.fields["seq"] == 1000
    assert tcp.fields["ack"] == 2000
    assert tcp.fields["window"] == 502
    assert tcp.fields["flag_names"] == "PSH, ACK"
    assert frame.payload == b"hello"
    assert frame.summary == "TCP [PSH, ACK] 5 B"
    assert [(c.layer, c.verdict) for c in frame.checksums] == [
        ("IPv4", Verdict.VALID),
        ("TCP", Verdict.VALID),
    ]


def test_padding_after_a_short_frame_is_not_data() -> None:
    raw = bytes(
        Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=CLIENT, dst=SERVER) / UDP(sport=1, dport=2) / b"x"
    )
    padded = raw + b"\x00" * (60 - len(raw))  # Ethernet's 60-byte minimum
    frame = dissect(padded)
    assert frame.payload == b"x"
    data = frame.layer("data")
    assert data is not None
    assert data.end == len(raw)
    assert all(c.verdict is Verdict.VALID for c in frame.checksums)


def test_udp_icmp_and_arp_frames() -> None:
    udp = dissect(bytes(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=5, dport=8080) / b"hi"))
    header = udp.layer("UDP")
    assert header is not None
    assert header.fields["length"] == 10
    assert udp.summary == "UDP 2 B"
    quoted = bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=5, dport=9) / b"hi")
    icmp = dissect(bytes(Ether() / IP(src=SERVER, dst=CLIENT) / ICMP(type=3, code=3) / quoted))
    assert icmp.summary == "ICMP port unreachable"
    assert [c.layer for c in icmp.checksums] == ["IPv4", "ICMP"]
    assert icmp.payload == quoted  # after ICMP's 8 bytes: the datagram that was refused
    arp = dissect(bytes(Ether() / ARP(op=1, psrc=CLIENT, pdst=SERVER)))
    assert arp.summary == "ARP who-has"
    assert (arp.src, arp.dst) == (CLIENT, SERVER)
    assert arp.checksums == ()


def test_a_corrupted_frame_is_caught() -> None:
    raw = bytearray(tcp_frame(payload=b"hello, checksum"))
    raw[-1] ^= 0x20  # one bit flipped in the data, as a bad cable would
    frame = dissect(bytes(raw))
    assert {c.layer: c.verdict for c in frame.checksums} == {
        "IPv4": Verdict.VALID,
        "TCP": Verdict.INVALID,
    }
    raw[22] ^= 0x01  # and one in the TTL: the IP header's own sum catches that
    assert dissect(bytes(raw)).checksums[0].verdict is Verdict.INVALID


def test_flag_names_in_the_order_people_say_them() -> None:
    assert flag_names(0x12) == "SYN, ACK"
    assert flag_names(0x11) == "FIN, ACK"
    assert flag_names(0x14) == "RST, ACK"
    assert flag_names(0x18) == "PSH, ACK"


def test_pcap_written_by_the_capture_reads_back(tmp_path: Path) -> None:
    big = bytes(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=5, dport=8080) / (b"a" * 65507))
    assert len(big) == 65549  # larger than scapy's default read size: must not be cut
    path = tmp_path / "c.pcap"
    path.write_bytes(
        file_header()
        + record(1_800_000_000, 123_456_789, tcp_frame(), len(tcp_frame()))
        + record(1_800_000_001, 5, big, len(big))
    )
    frames = read(path)
    assert [f.number for f in frames] == [1, 2]
    assert abs(frames[0].time - 1_800_000_000.123456789) < 1e-6
    assert frames[1].raw == big
    assert frames[1].checksums[1].verdict is Verdict.VALID
    assert checksum_counts(frames) == {
        "IPv4": {"valid": 2},
        "TCP": {"valid": 1},
        "UDP": {"valid": 1},
    }


def test_hex_view_marks_each_layer_start() -> None:
    text = hex_view(dissect(tcp_frame())).plain.splitlines()
    assert text[0] == "  0000  " + " ".join(f"{b:02x}" for b in tcp_frame()[:14]) + "|45 00"
    assert "|" in text[2]  # TCP starts at byte 34 (0x22), on the third line


def test_frame_json_is_plain_data() -> None:
    data = frame_json(dissect(tcp_frame()))
    assert data["summary"] == "TCP [PSH, ACK] 5 B"
    assert data["payload_hex"] == b"hello".hex()
    assert json.loads(json.dumps(data))["layers"][2]["name"] == "TCP"


def frame_at(t: float, raw: bytes, number: int = 1) -> Frame:
    return dissect(raw, t, number)


def event(t: float, op: str, outcome: str = "ok", dt: float = 0.0) -> Event:
    return Event(t, "client", "s", "tcp", op, "", "", outcome, dt=dt)


def test_ladder_puts_frames_calls_and_faults_on_one_time_line() -> None:
    names = {CLIENT: "client", SERVER: "shouthost"}
    offset, t0 = 1000.0, 50.0  # wall clock = monotonic + offset; the experiment began at t0
    frames = [
        frame_at(offset + t0 + 0.010, tcp_frame("S", b"")),
        frame_at(offset + t0 + 0.030, tcp_frame("A", b"x" * 100), 2),
        frame_at(offset + t0 + 0.031, tcp_frame("A", b"x" * 200), 3),
        frame_at(offset + t0 + 0.050, tcp_frame("R", b""), 4),
    ]
    events = [event(0.005, "connect", dt=0.01), event(0.060, "send", "EPIPE")]
    rungs = ladder.rungs(
        frames, events, names, t0=t0, clock_offset=offset, faults=[(0.040, "kill tcp-shout")]
    )
    assert [(r.kind, r.label, r.count) for r in rungs] == [
        ("frame", "TCP [SYN]", 1),
        ("call", "s connect", 1),  # placed at its end: 0.015
        ("frame", "TCP [ACK] 100 B", 2),  # two data segments folded into one rung
        ("fault", "kill tcp-shout", 1),
        ("frame", "TCP [RST]", 1),
        ("call", "s send -> EPIPE", 1),
    ]
    lines = ladder.text(rungs, ladder.columns_of(rungs, ["client", "shouthost"]))
    assert lines[0].split() == ["client", "shouthost"]
    assert "-TCP [SYN]-" in lines[1]
    assert lines[1].rstrip().endswith(">|")
    assert "x2" in lines[3]
    assert "=== fault: kill tcp-shout" in lines[4]
    assert lines[6].strip().endswith("* client: s send -> EPIPE")


def test_ladder_arrow_points_back_for_replies() -> None:
    names = {CLIENT: "client", SERVER: "shouthost"}
    reply = bytes(Ether() / IP(src=SERVER, dst=CLIENT) / TCP(flags="SA"))
    rungs = ladder.rungs([frame_at(1.0, reply)], [], names, t0=0.0, clock_offset=0.0)
    line = ladder.text(rungs, ["client", "shouthost"])[1]
    assert "|<" in line
    assert "TCP [SYN, ACK]" in line


def test_failure_cells_keep_their_own_clock() -> None:
    cell_event = {
        "t": 1.0, "dt": 0.0, "host": "client", "sock": "s", "protocol": "tcp", "op": "send",
        "local": "", "remote": "", "outcome": "ok", "nbytes": 1, "data": "x", "note": "",
    }  # fmt: skip
    cell = {"row": "kill", "client": "tcp", "t0": 110.0, "fault_at": 2.0, "recovered_at": 3.0}
    result = {"t0_monotonic": 100.0, "facts": {"cells": [{**cell, "events": [cell_event]}]}}
    assert [e.t for e in events_of(result)] == [11.0]
    assert faults_of(result) == [(12.0, "kill begins"), (13.0, "kill undone")]


def test_a_report_takes_apart_one_frame_of_each_kind() -> None:
    frames = [
        frame_at(1.0, tcp_frame("S", b""), 1),
        frame_at(1.1, tcp_frame("PA", b"data"), 2),
        frame_at(1.2, tcp_frame("PA", b"more"), 3),
        frame_at(1.3, bytes(Ether() / IP() / ICMP(type=3, code=3) / bytes(28)), 4),
    ]
    assert [f.number for f in examples(frames)] == [2, 4]  # no UDP in this capture


@given(
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 0x1FF),
    window=st.integers(0, 65535),
    ttl=st.integers(1, 255),
    ident=st.integers(0, 65535),
    payload=st.binary(max_size=64),
)
def test_tcp_fields_are_scapys(
    sport: int, dport: int, seq: int, ack: int, flags: int, window: int, ttl: int,
    ident: int, payload: bytes,
) -> None:  # fmt: skip
    packet = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=CLIENT, dst=SERVER, ttl=ttl, id=ident)
    packet /= TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window)
    raw = bytes(packet / payload)
    theirs = Ether(raw)  # scapy takes the same bytes apart: the independent reading
    ours = dissect(raw)
    ip, tcp = ours.layer("IPv4"), ours.layer("TCP")
    assert ip is not None
    assert tcp is not None
    assert ip.fields == {
        "version": 4, "header_length": 20, "total_length": theirs[IP].len, "id": ident,
        "flags": int(theirs[IP].flags), "ttl": ttl, "protocol": 6,
        "checksum": theirs[IP].chksum, "src": CLIENT, "dst": SERVER,
    }  # fmt: skip
    assert {k: v for k, v in tcp.fields.items() if k != "flag_names"} == {
        "src_port": sport, "dst_port": dport, "seq": seq, "ack": ack, "header_length": 20,
        "flags": int(theirs[TCP].flags), "window": window, "checksum": theirs[TCP].chksum,
    }  # fmt: skip
    assert ours.payload == payload
    assert [c.verdict for c in ours.checksums] == [Verdict.VALID, Verdict.VALID]


@given(sport=st.integers(0, 65535), payload=st.binary(max_size=64), op=st.sampled_from([1, 2]))
def test_udp_icmp_and_arp_fields_are_scapys(sport: int, payload: bytes, op: int) -> None:
    udp = Ether(bytes(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=9) / payload))
    layer = dissect(bytes(udp)).layer("UDP")
    assert layer is not None
    assert layer.fields == {
        "src_port": sport, "dst_port": 9, "length": udp[UDP].len, "checksum": udp[UDP].chksum,
    }  # fmt: skip
    icmp = Ether(bytes(Ether() / IP(src=SERVER, dst=CLIENT) / ICMP(type=3, code=3) / payload))
    layer = dissect(bytes(icmp)).layer("ICMP")
    assert layer is not None
    assert layer.fields == {"type": 3, "code": 3, "checksum": icmp[ICMP].chksum}
    arp = Ether(bytes(Ether(src=SRC_MAC) / ARP(op=op, hwsrc=SRC_MAC, psrc=CLIENT, pdst=SERVER)))
    frame = dissect(bytes(arp))
    layer = frame.layer("ARP")
    assert layer is not None
    assert layer.fields == {
        "op": op, "sender_mac": arp[ARP].hwsrc, "sender_ip": CLIENT,
        "target_mac": arp[ARP].hwdst, "target_ip": SERVER,
    }  # fmt: skip
    assert (frame.src, frame.dst) == (CLIENT, SERVER)


@pytest.mark.parametrize("cut", [0, 5, 13, 14, 20, 33, 34, 40, 53])
def test_a_frame_cut_anywhere_is_shown_as_far_as_it_goes(cut: int) -> None:
    frame = dissect(tcp_frame()[:cut])
    assert frame.layers[-1].name == "data" or cut >= 54
    assert all(layer.end <= max(cut, layer.start) or layer.name != "data" for layer in frame.layers)
    if 14 + 20 <= cut < 54:  # IPv4 whole, TCP not: its sum cannot be whole either
        assert frame.checksums[-1] == ("TCP", 0, 0, Verdict.INVALID)
