"""`lab packets` against `tshark -r`, on the same capture of ``Sizes.frames`` frames.

The capture is made here, deterministically: a conversation's worth of frame kinds
(TCP data and ACKs, UDP datagrams, an ICMP port unreachable, ARP), each with the
checksums a real wire would carry, repeated with rising ports and times. Both
commands list it, one line per frame, into /dev/null; interleaved repetitions.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.bench.model import Bench, BenchError, Sizes, Spread
from lab.names import PROJECT
from lab.packets import dissect, view
from lab.packets.checksum import internet_checksum, pseudo_header
from lab.progress import Progress, silent
from lab.services.helpers.capture import file_header, record

TARGET = "`lab packets` lists 100,000 frames at least as fast as `tshark -r` (same file)"
MAC_A, MAC_B = bytes.fromhex("02420acb0064"), bytes.fromhex("02420acb0014")
IP_A, IP_B = "10.203.0.100", "10.203.0.20"


def _ipv4(src: str, dst: str, protocol: int, payload: bytes, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, protocol, 0,
        bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))),
    )  # fmt: skip
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def _transport(src: str, dst: str, protocol: int, segment: bytearray, at: int) -> bytes:
    checksum = internet_checksum(pseudo_header(src, dst, protocol, len(segment)) + segment)
    segment[at : at + 2] = struct.pack("!H", checksum)
    return bytes(segment)


def frame(kind: int, i: int) -> bytes:
    """One of five kinds of frame, the ``i``th of its conversation."""
    port = 40000 + i % 20000
    if kind == 0:  # TCP data, client to server
        data = f"msg {i:05d}\n".encode()
        tcp = bytearray(struct.pack("!HHIIBBHHH", port, 8080, i * 10, 1, 0x50, 0x18, 64240, 0, 0))
        segment = _transport(IP_A, IP_B, 6, tcp + data, 16)
        return MAC_B + MAC_A + b"\x08\x00" + _ipv4(IP_A, IP_B, 6, segment, i & 0xFFFF)
    if kind == 1:  # its ACK
        tcp = bytearray(
            struct.pack("!HHIIBBHHH", 8080, port, 1, i * 10 + 10, 0x50, 0x10, 64240, 0, 0)
        )
        segment = _transport(IP_B, IP_A, 6, tcp, 16)
        return MAC_A + MAC_B + b"\x08\x00" + _ipv4(IP_B, IP_A, 6, segment, i & 0xFFFF)
    if kind == 2:  # a UDP datagram
        data = b"u" * 64
        udp = bytearray(struct.pack("!HHHH", port, 8080, 8 + len(data), 0)) + data
        segment = _transport(IP_A, IP_B, 17, udp, 6)
        return MAC_B + MAC_A + b"\x08\x00" + _ipv4(IP_A, IP_B, 17, segment, i & 0xFFFF)
    if kind == 3:  # ICMP port unreachable, quoting what it refuses
        quoted = _ipv4(IP_A, IP_B, 17, struct.pack("!HHHH", port, 9, 8, 0), 1)[:28]
        icmp = bytearray(struct.pack("!BBHI", 3, 3, 0, 0)) + quoted
        icmp[2:4] = struct.pack("!H", internet_checksum(bytes(icmp)))
        return MAC_A + MAC_B + b"\x08\x00" + _ipv4(IP_B, IP_A, 1, bytes(icmp), i & 0xFFFF)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, bytes([10, 203, 0, 100]),
                      b"\x00" * 6, bytes([10, 203, 0, 20]))  # fmt: skip
    return b"\xff" * 6 + MAC_A + b"\x08\x06" + arp + b"\x00" * 18


def write_capture(path: Path, count: int) -> None:
    with open(path, "wb") as out:
        out.write(file_header())
        for i in range(count):
            data = frame(i % 5, i)
            out.write(record(1_795_770_000 + i // 1000, (i % 1000) * 1_000_000, data, len(data)))


def _time(argv: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(argv[:3])}` failed: {done.stderr.decode()[-200:]}")
    return time.monotonic() - started


def phases(path: Path) -> dict[str, float]:
    """Where `lab packets` spends its time: interpreter and imports in a fresh process,
    then reading and dissecting, and the lines, timed here (imports already warm)."""
    found = {"start": _time([sys.executable, "-m", "lab", "--help"])}
    with dissect.no_cycle_collection():
        started = time.monotonic()
        frames = dissect.read(path)
        found["read"] = time.monotonic() - started
        started = time.monotonic()
        lines = "\n".join(view.listing(frames, {}, frames[0].time if frames else 0.0))
        found["lines"] = time.monotonic() - started
    del lines
    return {k: round(v, 2) for k, v in found.items()}


def why(lab_s: Spread, tshark_s: Spread, spent: dict[str, float], frames: int) -> str:
    per_frame = (spent["read"] + spent["lines"]) / max(frames, 1) * 1e6
    rest = max(0.0, lab_s.median - sum(spent.values()))
    return (
        f"`lab packets` took {lab_s.median:.2f} s to tshark's {tshark_s.median:.2f} s. Where "
        f"it goes (one run): {spent['start']:.2f} s starting Python and importing the driver, "
        f"{spent['read']:.2f} s reading and dissecting every frame, with every IPv4, TCP, "
        f"UDP and ICMP checksum verified (tshark verifies none by default), "
        f"{spent['lines']:.2f} s making the lines (about {per_frame:.0f} µs of Python per "
        f"frame for both), {rest:.2f} s the rest (the checksum summary, writing, exiting). "
        "Tried: scapy (31 s for 10,000 frames), then a reader of our own with struct, "
        "headers built with tuple.__new__, fields decoded only when shown, and the cycle "
        "collector off for the command (it had walked the frames again and again: a fifth "
        "of the time). Closing the rest would take compiled code; the driver stays pure "
        "Python."
    )


def run(net: object, sizes: Sizes, progress: Progress = silent) -> Bench:
    if shutil.which("tshark") is None:
        raise BenchError("tshark is not installed, the peer of this benchmark", "run `make setup`")
    with tempfile.TemporaryDirectory(prefix=f"{PROJECT}-bench-") as folder:
        path = Path(folder) / "frames.pcap"
        progress(f"writing a capture of {sizes.frames} frames")
        write_capture(path, sizes.frames)
        ours: list[float] = []
        theirs: list[float] = []
        for rep in range(max(1, min(sizes.repeats, 3))):
            progress(f"listing it, repetition {rep + 1}")
            lab_argv = [sys.executable, "-m", "lab", "packets", str(path)]
            tshark_argv = ["tshark", "-r", str(path)]
            pair = (lab_argv, tshark_argv) if rep % 2 == 0 else (tshark_argv, lab_argv)
            for argv in pair:
                (ours if argv is lab_argv else theirs).append(_time(argv))
        progress("where the time goes")
        spent = phases(path)
    lab_s, tshark_s = Spread.of(ours), Spread.of(theirs)
    met = lab_s.median <= tshark_s.median
    return Bench(
        "packets",
        TARGET,
        met,
        f"{sizes.frames} frames, one line each: lab packets {lab_s.text(2, ' s')}, "
        f"tshark -r {tshark_s.text(2, ' s')}",
        {
            "frames": sizes.frames,
            "lab_seconds": lab_s.json(),
            "tshark_seconds": tshark_s.json(),
            "phases": spent,
        },
        why="" if met else why(lab_s, tshark_s, spent, sizes.frames),
    )
