"""What the device that received a frame decided, in one line, from what was recorded.

Pure: the frames of a capture in order, the port tables an experiment recorded (host ->
rows of protocol, address, port, pid, service, as ``lab status`` reads them) and the
hosts' names by address. A line is said only from evidence, and ``None`` where there is
none: an owner only when a port table lists the port; a listening or bound socket only
when it answered (SYN, ACK to a SYN; a datagram back from the port); a connection's
socket only after its handshake was seen; a refusal only when the answer was seen (an
RST to a SYN, an ICMP port unreachable quoting the datagram); a router only when the
same IP packet (same addresses, IP id and bytes) is seen again with its TTL one lower.
One pass over the frames, with a few dictionaries, so a long capture is decided in one go."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from lab.packets import dns
from lab.packets.dissect import Frame, Layer

Rows = Mapping[str, Sequence[Mapping[str, Any]]]
ANY_ADDRESS = ("0.0.0.0", "::", "*", "")
UNREACHABLE, PORT_UNREACHABLE, TIME_EXCEEDED = 3, 3, 11
SYN, RST, ACK = 0x02, 0x04, 0x10
DNS_PORT, RESOLVER = 53, "127.0.0.11"  # Docker's resolver, in every host's namespace


class Flow(NamedTuple):
    """One direction of a conversation: who sent to whom, by address and port."""

    protocol: str
    src: str
    sport: int
    dst: str
    dport: int

    def reverse(self) -> Flow:
        return Flow(self.protocol, self.dst, self.dport, self.src, self.sport)


def owner(tables: Rows, host: str, protocol: str, port: int, address: str) -> str | None:
    """The process a port table says holds ``protocol`` ``port`` at ``address`` on
    ``host``: "tcp-shout (pid 7)"; None when no table lists it."""
    for row in tables.get(host, ()):
        if str(row.get("protocol", "")).rstrip("6") != protocol or row.get("port") != port:
            continue
        if str(row.get("address", "")) not in (*ANY_ADDRESS, address):
            continue
        who = row.get("service") or row.get("command") or ""
        if row.get("pid") is None:
            return "a socket whose owner the table does not show"
        return f"{who} (pid {row['pid']})" if who else f"pid {row['pid']}"
    return None


class Decider:
    """Frames fed in order; each one's lines (what :func:`decisions` returns, unjoined).
    A line said of an earlier frame can be taken back when a later frame contradicts it:
    a port table read before a process died names an owner that the RST answering the
    very next segment denies."""

    def __init__(
        self, tables: Rows, names: Mapping[str, str], macs: Mapping[str, str] | None = None
    ) -> None:
        self.tables = tables
        self.names = names
        self.macs = dict(macs or {})  # MAC -> host name, learned from ARP as well
        self.lines: list[list[str]] = []
        self.last: dict[Flow, tuple[int, int | None]] = {}  # a flow's last frame, its ack
        self.syns: dict[Flow, tuple[int, int]] = {}  # an unanswered SYN: (index, its seq)
        self.connections: set[Flow] = set()  # both ways of each handshake seen, until an RST
        self.arp_asked: dict[tuple[str, str], int] = {}  # (asker, asked) -> frame index
        # an IP packet -> the frame it was last seen in, and its TTL there
        self.packets: dict[tuple[str, str, int, int, bytes], tuple[int, int]] = {}

    def name(self, ip: str) -> str:
        return self.names.get(ip, ip)

    def owner(self, flow: Flow) -> str | None:
        """Who the receiver's port table says holds the flow's port: only for a host
        known by name (an address no host has is no host's table)."""
        host = self.names.get(flow.dst)
        return (
            None if host is None else owner(self.tables, host, flow.protocol, flow.dport, flow.dst)
        )

    def kernel(self, ip: str) -> str:
        return f"{self.names[ip]}'s kernel" if ip in self.names else f"the kernel at {ip}"

    def feed(self, frame: Frame) -> list[str]:
        index = len(self.lines)
        lines: list[str] = []
        self.lines.append(lines)
        arp = frame.layer("ARP")
        if arp is not None:
            self._arp(index, arp.fields)
            return lines
        ip = frame.layer("IPv4")
        if ip is None:
            return lines
        self._ttl(index, frame, ip, lines)
        tcp, udp, icmp = frame.layer("TCP"), frame.layer("UDP"), frame.layer("ICMP")
        if tcp is not None:
            self._tcp(index, frame, tcp.fields)
        elif udp is not None:
            self._udp(index, frame, udp.fields)
        elif icmp is not None:
            self._icmp(index, frame, icmp.fields)
        return lines

    def _replace(self, index: int, start: str, line: str) -> None:
        """Frame ``index``'s line that begins with ``start`` becomes ``line``."""
        kept = [x for x in self.lines[index] if not x.startswith(start)]
        self.lines[index][:] = [*kept, line]

    # --- each kind ---

    def _arp(self, index: int, f: Mapping[str, int | str]) -> None:
        sender, mac = str(f["sender_ip"]), str(f["sender_mac"])
        if sender in self.names:
            self.macs.setdefault(mac, self.names[sender])
        if f["op"] == 1:
            self.arp_asked[sender, str(f["target_ip"])] = index
            return
        asked = self.arp_asked.pop((str(f["target_ip"]), sender), None)
        who = f" ({self.names[sender]})" if sender in self.names else ""
        if asked is not None:
            self.lines[asked].append(f"ARP: who has {sender}? → {mac}{who}")
        self.lines[index].append(f"ARP: {sender}{who} is at {mac}")

    def _ttl(self, index: int, frame: Frame, ip: Layer, lines: list[str]) -> None:
        """The same IP packet seen before with a TTL one higher: a router forwarded it.
        Where it was seen before, the router was its receiver: what that frame's
        destination address would have decided is not what happened on that wire."""
        f = ip.fields
        ttl = int(f["ttl"])
        body = frame.raw[ip.end : ip.start + int(f["total_length"])]  # not the padding
        key = (str(f["src"]), str(f["dst"]), int(f["id"]), int(f["protocol"]), body)
        seen = self.packets.get(key)
        self.packets[key] = (index, ttl)
        if seen is None or seen[1] != ttl + 1:
            return
        earlier, before = seen
        mac = str(frame.layers[frame.inner].fields.get("src", ""))  # the router's Ethernet
        router = self.macs.get(mac, mac)
        lines.append(f"TTL {before}→{ttl} at {router}")
        kernel = f"{router}'s kernel" if mac in self.macs else f"the router at {mac}"
        forwarded = f"{kernel}: {f['dst']} is not its own → forwarded, TTL {before}→{ttl}"
        self.lines[earlier][:] = [forwarded]

    def _tcp(self, index: int, frame: Frame, f: Mapping[str, int | str]) -> None:
        flow = Flow("tcp", frame.src, int(f["src_port"]), frame.dst, int(f["dst_port"]))
        flags, seq, ack = int(f["flags"]), int(f["seq"]), int(f["ack"])
        asked = flow.reverse()
        if flags & RST:
            self._reset(index, flow, seq, ack)
            return
        self.last[flow] = (index, ack if flags & ACK else None)
        if flags & SYN and not flags & ACK:
            self.syns[flow] = (index, seq)
        kernel = self.kernel(flow.dst)
        said = self.owner(flow)
        syn = self.syns.get(asked)
        if flags & SYN and flags & ACK and syn is not None and ack == (syn[1] + 1) % 2**32:
            del self.syns[asked]
            self.connections.update((flow, asked))
            start = f"{self.kernel(flow.src)}: TCP port {flow.sport} → "
            if not any(x.startswith(start) for x in self.lines[syn[0]]):
                self.lines[syn[0]].append(f"{start}a listening socket (it answered SYN, ACK)")
            said = said or "the connecting socket (it sent the SYN)"
        elif flow in self.connections:
            said = said or "this connection's socket (its handshake was seen)"
        if said is not None:
            self.lines[index].append(f"{kernel}: TCP port {flow.dport} → {said}")

    def _reset(self, index: int, flow: Flow, seq: int, ack: int) -> None:
        asked = flow.reverse()
        self.connections.difference_update((flow, asked))
        syn = self.syns.pop(asked, None)
        last = self.last.pop(asked, None)
        start = f"{self.kernel(flow.src)}: TCP port {flow.sport} → "
        if syn is not None and ack == (syn[1] + 1) % 2**32:
            line = f"{self.kernel(flow.src)}: no socket on TCP {flow.sport} → RST"
            self._replace(syn[0], start, line)
        else:
            # Its socket gone, or closed with unread data, or aborted (SO_LINGER 0): the
            # frames cannot tell which, so no cause is given.
            line = f"{self.kernel(flow.src)}: TCP port {flow.sport}: the connection is reset (RST)"
            if last is not None and last[1] == seq:  # the RST answers that very segment
                self._replace(last[0], start, line)
        self.lines[index].append(line)

    def _dns(self, index: int, flow: Flow, payload: bytes) -> bool:
        """A DNS question or answer (to or from port 53, or Docker's resolver, whose port
        its own address translation changes): what was asked, what was answered."""
        if DNS_PORT not in (flow.sport, flow.dport) and RESOLVER not in (flow.src, flow.dst):
            return False
        try:
            message = dns.parse(payload)
        except dns.DnsError:
            return False
        resolver = "Docker's resolver" if RESOLVER in (flow.src, flow.dst) else "the resolver"
        asked = ", ".join(f"{q.type} {q.name}?" for q in message.questions) or "nothing"
        if not message.response:
            self.lines[index].append(f"{resolver} is asked: {asked}")
            return True
        said = ", ".join(f"{r.name} → {r.value}" for r in message.answers if r.type == "A")
        self.lines[index].append(
            f"{resolver} answers {asked} "
            + (said if said else f"with no address ({message.rcode})")
        )
        return True

    def _udp(self, index: int, frame: Frame, f: Mapping[str, int | str]) -> None:
        flow = Flow("udp", frame.src, int(f["src_port"]), frame.dst, int(f["dst_port"]))
        if self._dns(index, flow, frame.payload):
            return
        said = self.owner(flow)
        earlier = self.last.get(flow.reverse())
        if earlier is not None:  # sent from the port the other went to: it was bound there
            start = f"{self.kernel(flow.src)}: UDP port {flow.sport} → "
            if not any(x.startswith(start) for x in self.lines[earlier[0]]):
                self.lines[earlier[0]].append(f"{start}a bound socket (it answered)")
            said = said or "the socket that sent the datagram this answers"
        self.last[flow] = (index, None)
        if said is not None:
            self.lines[index].append(f"{self.kernel(flow.dst)}: UDP port {flow.dport} → {said}")

    def _icmp(self, index: int, frame: Frame, f: Mapping[str, int | str]) -> None:
        kind, code = int(f["type"]), int(f["code"])
        if kind == TIME_EXCEEDED:
            self.lines[index].append(f"{self.name(frame.src)}: TTL reached 0 → ICMP time exceeded")
            return
        quoted = quoted_flow(frame.payload)
        if (kind, code) != (UNREACHABLE, PORT_UNREACHABLE) or quoted is None:
            return
        if quoted.protocol != "udp" or quoted.dst != frame.src:
            return
        line = f"{self.kernel(frame.src)}: no socket on UDP {quoted.dport} → ICMP port unreachable"
        refused = self.last.pop(quoted, None)
        if refused is not None:
            self._replace(refused[0], f"{self.kernel(frame.src)}: UDP port {quoted.dport} → ", line)
        self.lines[index].append(line)


def quoted_flow(quoted: bytes) -> Flow | None:
    """The UDP or TCP flow an ICMP error quotes (its IP header and first 8 bytes)."""
    if len(quoted) < 20:
        return None
    at = (quoted[0] & 0x0F) * 4
    protocol = {6: "tcp", 17: "udp"}.get(quoted[9])
    if protocol is None or at < 20 or len(quoted) < at + 4:
        return None
    src, dst = socket.inet_ntoa(quoted[12:16]), socket.inet_ntoa(quoted[16:20])
    sport, dport = int.from_bytes(quoted[at : at + 2]), int.from_bytes(quoted[at + 2 : at + 4])
    return Flow(protocol, src, sport, dst, dport)


def decisions(
    frames: Sequence[Frame],
    tables: Rows,
    names: Mapping[str, str],
    macs: Mapping[str, str] | None = None,
) -> list[str | None]:
    """For each frame, in order, what the device that received it decided (lines joined
    by "; "), or None where nothing recorded says."""
    decider = Decider(tables, names, macs)
    for frame in frames:
        decider.feed(frame)
    return ["; ".join(lines) if lines else None for lines in decider.lines]
