"""The user-space netem's decisions and its netlink messages, byte by byte."""

from __future__ import annotations

import struct

import pytest

from lab.services.helpers.netem import (
    NFNL_SUBSYS_QUEUE,
    NFQA_PACKET_HDR,
    NFQA_PAYLOAD,
    NFQNL_MSG_PACKET,
    Schedule,
    attribute,
    config,
    error_code,
    flip,
    message,
    packets,
    verdict,
)


def test_attributes_are_padded_to_four_bytes() -> None:
    assert attribute(2, b"\x01") == b"\x05\x00\x02\x00\x01\x00\x00\x00"
    assert attribute(2, b"abcd") == b"\x08\x00\x02\x00abcd"
    assert attribute(2, b"") == b"\x04\x00\x02\x00"


def test_message_layout() -> None:
    msg = message(1, 7, b"", seq=9)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind, flags, seq, pid) == (20, NFNL_SUBSYS_QUEUE << 8 | 1, 1, 9, 0)
    assert msg[16:] == b"\x00\x00\x00\x07"  # AF_UNSPEC, version 0, queue 7 (big-endian)


def test_config_binds_then_asks_for_whole_packets() -> None:
    bind, params = config(7, seq=1)
    assert bind[20:] == attribute(1, b"\x01\x00\x00\x00")  # NFQNL_CFG_CMD_BIND
    assert params[20:] == attribute(2, b"\x00\x00\xff\xff\x02")  # 64 KiB, COPY_PACKET
    assert struct.unpack_from("=H", bind, 6)[0] == 5  # NLM_F_REQUEST | NLM_F_ACK


def test_verdict_accepts_and_may_carry_new_bytes() -> None:
    plain = verdict(7, packet_id=0x01020304, seq=3)
    assert plain[20:] == attribute(2, b"\x00\x00\x00\x01\x01\x02\x03\x04")
    changed = verdict(7, packet_id=5, seq=4, payload=b"new")
    assert changed.endswith(attribute(10, b"new"))


def queued(packet_id: int, payload: bytes) -> bytes:
    attrs = attribute(NFQA_PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 3))
    attrs += attribute(NFQA_PAYLOAD, payload)
    return message(NFQNL_MSG_PACKET, 7, attrs, seq=0)


def test_packets_are_read_back_from_a_buffer_of_messages() -> None:
    buffer = queued(1, b"E" + bytes(19)) + queued(2, b"E" + bytes(21))
    assert list(packets(buffer)) == [(1, b"E" + bytes(19)), (2, b"E" + bytes(21))]
    for cut in range(len(buffer)):  # a buffer cut anywhere yields only whole packets
        assert [i for i, _ in packets(buffer[:cut])] in ([], [1], [1, 2])


def test_error_code_of_an_acknowledgement() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", 0) + bytes(16)
    assert error_code(ack) == 0
    refused = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    assert error_code(refused) == 1  # EPERM: no CAP_NET_ADMIN
    assert error_code(queued(1, b"")) is None


def test_flip_changes_one_bit_after_the_ip_header() -> None:
    packet = bytes([0x45]) + bytes(19) + b"\x00\xff"
    assert flip(packet, 0) == packet[:20] + b"\x80\xff"
    assert flip(packet, 15) == packet[:20] + b"\x00\xfe"


def test_schedule_delay_jitter_and_reorder() -> None:
    plain = Schedule(delay_ms=50, seed=1)
    assert {plain.plan(100).release for _ in range(20)} == {0.05}
    jittered = Schedule(delay_ms=50, jitter_ms=10, seed=1)
    releases = [jittered.plan(100).release for _ in range(500)]
    assert min(releases) >= 0.04
    assert max(releases) <= 0.06
    assert len(set(releases)) > 100
    reordered = Schedule(delay_ms=50, reorder_pct=25, seed=1)
    at_once = sum(reordered.plan(100).release == 0 for _ in range(2000))
    assert 400 < at_once < 600


@pytest.mark.parametrize(
    ("kind", "field"), [("duplicate_pct", "duplicate"), ("corrupt_pct", "corrupt_bit")]
)
def test_schedule_rates(kind: str, field: str) -> None:
    schedule = Schedule(seed=2, **{kind: 10.0})
    plans = [schedule.plan(100) for _ in range(5000)]
    hits = sum(getattr(p, field) not in (None, False) for p in plans)
    assert 400 < hits < 600
    assert all(p.corrupt_bit is None or 0 <= p.corrupt_bit < 800 for p in plans)


def test_schedule_is_seeded() -> None:
    a, b = Schedule(delay_ms=10, jitter_ms=5, seed=3), Schedule(delay_ms=10, jitter_ms=5, seed=3)
    assert [a.plan(10) for _ in range(50)] == [b.plan(10) for _ in range(50)]
