"""A netem in user space, for kernels without sch_netem (standard library only).

    python3 -m services.helpers.netem QUEUE DELAY_MS JITTER_MS REORDER_PCT DUPLICATE_PCT \
        CORRUPT_PCT [SEED]

Binds netfilter queue QUEUE (an iptables NFQUEUE rule sends a host's outgoing
packets there) and gives each packet back to the kernel later: after DELAY_MS,
plus or minus up to JITTER_MS; REORDER_PCT of them at once, overtaking the
delayed ones (netem's ``reorder``); DUPLICATE_PCT sent twice (the copy through a
raw socket, marked so the rule lets it pass); CORRUPT_PCT with one bit flipped
after the IP header. Runs in a helper with CAP_NET_ADMIN and CAP_NET_RAW.

``Schedule`` decides (pure, seeded); the netlink messages are built and read by
pure functions (``config``, ``verdict``, ``packets``); the loop is thin.
"""

from __future__ import annotations

import heapq
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NF_ACCEPT = 1
COPY_RANGE = 0xFFFF
MARK = 0x4E4C  # "NL": a duplicate carries it, and the queue rule lets it by
SO_MARK = 36
COPY = -1  # in the waiting line: not a packet id, a duplicate to send


# --- deciding, per packet (pure) -----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What becomes of one packet: when it leaves, whether twice, which bit flips."""

    release: float  # seconds after it was queued
    duplicate: bool
    corrupt_bit: int | None  # bit offset from the start of the IP payload


@dataclass
class Schedule:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    duplicate_pct: float = 0.0
    corrupt_pct: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def plan(self, transport_bytes: int) -> Plan:
        if self.reorder_pct and self.rng.random() * 100 < self.reorder_pct:
            delay = 0.0  # sent at once: it overtakes those still waiting
        else:
            delay = self.delay_ms + self.rng.uniform(-self.jitter_ms, self.jitter_ms)
        duplicate = bool(self.duplicate_pct) and self.rng.random() * 100 < self.duplicate_pct
        corrupt = None
        if self.corrupt_pct and transport_bytes and self.rng.random() * 100 < self.corrupt_pct:
            corrupt = self.rng.randrange(transport_bytes * 8)
        return Plan(max(0.0, delay) / 1000, duplicate, corrupt)


def flip(packet: bytes, bit: int) -> bytes:
    """The IPv4 packet with one bit of its payload (after the IP header) inverted."""
    at = (packet[0] & 0x0F) * 4 + bit // 8
    return packet[:at] + bytes([packet[at] ^ (0x80 >> bit % 8)]) + packet[at + 1 :]


# --- netlink, as bytes (pure) -----------------------------------------------------------


def attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\x00" * (-length % 4)


def message(kind: int, queue: int, payload: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    """An nfnetlink message to the queue subsystem: netlink header, nfgenmsg, attributes."""
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + payload
    header = struct.pack("=IHHII", 16 + len(body), NFNL_SUBSYS_QUEUE << 8 | kind, flags, seq, 0)
    return header + body


def config(queue: int, seq: int) -> list[bytes]:
    """Bind the queue, and ask for whole packets (up to 64 KiB)."""
    ack = NLM_F_REQUEST | NLM_F_ACK
    bind = attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0))
    params = attribute(NFQA_CFG_PARAMS, struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET))
    return [
        message(NFQNL_MSG_CONFIG, queue, bind, seq, ack),
        message(NFQNL_MSG_CONFIG, queue, params, seq + 1, ack),
    ]


def verdict(queue: int, packet_id: int, seq: int, payload: bytes | None = None) -> bytes:
    """Give a packet back: accepted, with its bytes replaced when ``payload`` is given."""
    attrs = attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
    if payload is not None:
        attrs += attribute(NFQA_PAYLOAD, payload)
    return message(NFQNL_MSG_VERDICT, queue, attrs, seq)


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(packet id, IP packet) for each queued packet in a buffer of netlink messages."""
    at = 0
    while at + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, at)
        if length < 16 or at + length > len(data):
            return  # malformed, or cut short: nothing more to read
        if kind == NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:
            packet_id, payload = None, b""
            a = at + 20  # past the netlink header and nfgenmsg
            while a + 4 <= at + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFQA_PACKET_HDR:
                    packet_id = struct.unpack_from("!I", data, a + 4)[0]
                elif atype & 0x7FFF == NFQA_PAYLOAD:
                    payload = data[a + 4 : a + alen]
                a += (alen + 3) & ~3
            if packet_id is not None:
                yield packet_id, payload
        at += (length + 3) & ~3


def error_code(data: bytes) -> int | None:
    """The errno of a netlink error or acknowledgement (0: success), None for other messages."""
    if len(data) >= 20 and struct.unpack_from("=H", data, 4)[0] == NLMSG_ERROR:
        return -int(struct.unpack_from("=i", data, 16)[0])
    return None


# --- the loop ---------------------------------------------------------------------------


class Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise Stop


def run(queue: int, schedule: Schedule) -> None:
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    nl.bind((0, 0))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)  # duplicates skip the queue
    seq = 1
    for request in config(queue, seq):
        nl.send(request)
        code = error_code(nl.recv(4096))
        if code:
            raise OSError(code, f"binding netfilter queue {queue}")
        seq += 1
    print(f"queue {queue}: delaying packets", file=sys.stderr, flush=True)
    # (due, order, packet id or COPY, bytes): a verdict to give, or a duplicate to send
    waiting: list[tuple[float, int, int, bytes | None]] = []
    order = 0
    while True:
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            _, _, packet_id, data = heapq.heappop(waiting)
            if packet_id == COPY and data is not None:
                raw.sendto(data, (socket.inet_ntoa(data[16:20]), 0))
                continue
            seq += 1
            nl.send(verdict(queue, packet_id, seq, data))
        nl.settimeout(max(0.0005, waiting[0][0] - now) if waiting else None)
        try:
            data = nl.recv(COPY_RANGE + 4096)
        except TimeoutError:
            continue
        for packet_id, packet in packets(data):
            header = (packet[0] & 0x0F) * 4 if packet else 0
            plan = schedule.plan(max(0, len(packet) - header))
            replaced = flip(packet, plan.corrupt_bit) if plan.corrupt_bit is not None else None
            due = time.monotonic() + plan.release
            order += 1
            heapq.heappush(waiting, (due, order, packet_id, replaced))
            if plan.duplicate and len(packet) >= 20:
                order += 1
                heapq.heappush(waiting, (due, order, COPY, packet))  # delayed like the original


def main(argv: list[str]) -> int:
    if len(argv) not in (6, 7):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    queue = int(argv[0])
    delay, jitter, reorder, duplicate, corrupt = (float(x) for x in argv[1:6])
    seed = int(argv[6]) if len(argv) == 7 else None
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        run(queue, Schedule(delay, jitter, reorder, duplicate, corrupt, seed))
    except Stop:
        pass
    except OSError as exc:
        print(f"netem: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
