"""A packet capture in the standard library: every frame on some interfaces, into a pcap file.

    python3 -m services.helpers.capture IFACE[,IFACE...]|all FILE

FILE ``-`` streams the pcap to standard output instead (``socklab web`` and
``socklab capture`` read frames live). ``all``: every interface of the namespace the
helper is in, loopback included (a lab host's: its DNS queries to Docker's
resolver at 127.0.0.11 cross its loopback).

Runs in a helper container that needs only CAP_NET_RAW. Frames are read from an
AF_PACKET socket with the kernel's receive timestamp and written as they come
(pcap with nanosecond timestamps, the format tcpdump's ``--nano`` writes), so
the file is complete up to the last frame whenever it is read. SIGTERM or
SIGINT ends the capture cleanly.

Each interface is put into promiscuous mode through the socket's membership,
which the kernel drops again when the socket closes: a bridge shows frames
passing between its ports only to a promiscuous listener.
"""

from __future__ import annotations

import select
import signal
import socket
import struct
import sys
from typing import BinaryIO

PCAP_MAGIC_NS = 0xA1B23C4D  # pcap, nanosecond timestamps
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def file_header(snaplen: int = SNAPLEN) -> bytes:
    return struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)


def record(seconds: int, nanoseconds: int, frame: bytes, wire_length: int) -> bytes:
    return struct.pack("<IIII", seconds, nanoseconds, len(frame), wire_length) + frame


def timestamp(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, int] | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            return seconds, nanoseconds
    return None


class Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise Stop


def open_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    index = socket.if_nametoindex(interface)
    sock.setsockopt(
        SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
    )
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def capture(interfaces: list[str], out: BinaryIO) -> None:
    """Every frame on ``interfaces`` (bridges: one per lab network) into one pcap file.
    A frame routed between two networks is recorded once on each, as a wire would show it."""
    socks = [open_socket(name) for name in interfaces]
    # Loopback hands a tap each frame twice, going out and coming in: keep it coming in,
    # as libpcap does.
    loops = {s for s, name in zip(socks, interfaces, strict=True) if name == "lo"}
    out.write(file_header())
    out.flush()
    print(f"capturing on {', '.join(interfaces)}", file=sys.stderr, flush=True)
    try:
        while True:
            ready, _, _ = select.select(socks, [], [])
            for sock in ready:
                frame, ancillary, _flags, address = sock.recvmsg(SNAPLEN, 64, socket.MSG_TRUNC)
                if sock in loops and address[2] == PACKET_OUTGOING:
                    continue
                stamp = timestamp(ancillary) or (0, 0)
                kept = frame[:SNAPLEN]
                out.write(record(*stamp, kept, max(len(frame), len(kept))))
            out.flush()
    except Stop:
        pass
    finally:
        for sock in socks:
            sock.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(
            "usage: python3 -m services.helpers.capture IFACE[,IFACE...]|all FILE", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interfaces = (
        sorted(name for _, name in socket.if_nameindex())
        if argv[0] == "all"
        else argv[0].split(",")
    )
    if argv[1] == "-":
        capture(interfaces, sys.stdout.buffer)
        return 0
    with open(argv[1], "wb") as out:
        capture(interfaces, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
