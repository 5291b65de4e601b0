"""Capture files byte by byte: classic pcap in both byte orders and both clocks, pcapng,
streams in pieces, and what is refused (with the reason) rather than misread."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, PcapWriter

from lab.errors import PacketError
from lab.packets import dissect
from lab.packets.pcap import PcapError, PcapStream, RecordCutter, records
from lab.services.helpers.capture import file_header, record

FRAME = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"hi")


def _classic(order: str, magic: int, linktype: int, *recs: tuple[int, int, bytes]) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for seconds, fraction, data in recs:
        out += struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data
    return out


@pytest.mark.parametrize(
    ("order", "magic", "fraction", "time"),
    [
        ("<", 0xA1B2C3D4, 250_000, 100.25),  # little-endian, microseconds
        (">", 0xA1B2C3D4, 250_000, 100.25),  # big-endian (a capture from another machine)
        ("<", 0xA1B23C4D, 5, 100.000000005),  # nanoseconds, as the lab's capture writes
        (">", 0xA1B23C4D, 5, 100.000000005),
    ],
)
def test_classic_pcap_in_each_order_and_clock(
    tmp_path: Path, order: str, magic: int, fraction: int, time: float
) -> None:
    path = tmp_path / "c.pcap"
    path.write_bytes(_classic(order, magic, 1, (100, fraction, FRAME), (101, 0, b"x" * 14)))
    got = list(records(path))
    assert [data for _, data in got] == [FRAME, b"x" * 14]
    assert got[0][0] == pytest.approx(time, abs=1e-9)


def test_pcapng_as_wireshark_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    packet = Ether(FRAME)
    packet.time = 1_800_000_000.5
    with PcapNgWriter(str(path)) as writer:
        writer.write(packet)
        writer.write(packet)
    got = list(records(path))
    assert [data for _, data in got] == [FRAME, FRAME]
    assert got[0][0] == pytest.approx(1_800_000_000.5, abs=1e-5)
    assert [f.summary for f in dissect.read(path)] == ["UDP 2 B", "UDP 2 B"]


def test_a_pcapng_block_shorter_than_its_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    with PcapNgWriter(str(path)) as writer:
        writer.write(Ether(FRAME))
    data = path.read_bytes()
    # The section and interface blocks, then an enhanced packet block of 12 bytes: a
    # valid length field, no room for its interface, time or lengths.
    header_end = data.index(struct.pack("<I", 6))
    path.write_bytes(data[:header_end] + struct.pack("<III", 6, 12, 12))
    with pytest.raises(PacketError, match="cut short"):
        dissect.read(path)


def test_scapys_own_pcap_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "s.pcap"
    with PcapWriter(str(path)) as writer:
        writer.write(Ether(FRAME))
    assert [data for _, data in records(path)] == [FRAME]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"GIF89a" + b"\x00" * 30, "neither pcap nor pcapng"),
        (_classic("<", 0xA1B2C3D4, 113), "Linux cooked"),  # tcpdump -i any
        (_classic("<", 0xA1B2C3D4, 101), "raw IP"),
        (_classic("<", 0xA1B2C3D4, 1, (1, 0, FRAME))[:-3], "cut short"),
        (_classic("<", 0xA1B2C3D4, 1)[:20], "cut short inside the file header"),
    ],
)
def test_what_is_refused_says_why(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(data)
    with pytest.raises(PcapError, match=reason):
        list(records(path))
    with pytest.raises(PacketError, match=f"cannot read .*bad.pcap as a capture: .*{reason}"):
        dissect.read(path)


def test_a_pcap_stream_is_read_the_same_in_any_pieces() -> None:
    data = file_header() + record(100, 5, b"one", 3) + record(101, 7, b"frame two", 9)
    whole = PcapStream().feed(data)
    assert [(round(t, 9), f) for t, f in whole] == [
        (100.000000005, b"one"),
        (101.000000007, b"frame two"),
    ]
    for cut in range(len(data)):
        stream = PcapStream()
        pieces = stream.feed(data[:cut]) + stream.feed(data[cut:])
        assert pieces == whole
    with pytest.raises(PcapError, match="not a little-endian pcap"):
        PcapStream().feed(b"\x00" * 24)


def test_a_live_capture_is_cut_where_its_records_end_however_it_arrives() -> None:
    header = file_header()
    one, two = record(100, 5, b"one", 3), record(101, 7, b"frame two", 9)
    data = header + one + two
    for cut in range(len(data) + 1):
        for second in range(cut, len(data) + 1):
            cutter = RecordCutter()
            pieces = [
                *cutter.feed(data[:cut]),
                *cutter.feed(data[cut:second]),
                *cutter.feed(data[second:]),
            ]
            assert pieces == [header, one, two], (cut, second)
            assert cutter.frames == 2
    cutter = RecordCutter()
    assert cutter.feed(header + one + two[:-1]) == [header, one]  # the last one is not whole
    assert cutter.frames == 1
    assert round(cutter.time_of(one), 9) == 100.000000005
    with pytest.raises(PcapError, match="not a little-endian pcap"):
        RecordCutter().feed(b"\x00" * 24)
