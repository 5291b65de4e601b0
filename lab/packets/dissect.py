"""Frames taken apart layer by layer: Ethernet, ARP or IPv4, then TCP, UDP or ICMP, then data.

Reading pcap files and naming header fields is scapy's job (a well-kept
dissector); where each header starts and ends in the frame, and whether its
checksum holds, is worked out here from the captured bytes themselves, with the
project's own :mod:`lab.packets.checksum`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scapy.error import Scapy_Exception
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet
from scapy.utils import PcapReader

from lab.errors import PacketError
from lab.packets.checksum import Verdict, icmp_verdict, ipv4_verdict, verdict

ETH_HEADER = 14
MAX_FRAME = 262144  # the capture's snap length
TCP_FLAGS = "FSRPAUEC"  # bit 0 (FIN) to bit 7 (CWR)
ICMP_NAMES = {
    (0, 0): "echo reply",
    (8, 0): "echo request",
    (3, 3): "port unreachable",
    (11, 0): "time exceeded",
}


@dataclass(frozen=True)
class Layer:
    name: str  # Ethernet, ARP, IPv4, TCP, UDP, ICMP, data
    start: int  # byte offset in the frame where this header begins
    end: int  # ...and where it ends (for data: where the frame's payload ends)
    fields: dict[str, int | str]


@dataclass(frozen=True)
class ChecksumCheck:
    layer: str
    carried: int
    computed: int
    verdict: Verdict


@dataclass(frozen=True)
class Frame:
    number: int  # from 1, as Wireshark counts
    time: float  # seconds since the epoch, from the capture
    raw: bytes
    layers: tuple[Layer, ...]
    checksums: tuple[ChecksumCheck, ...] = field(default=())

    def layer(self, name: str) -> Layer | None:
        return next((x for x in self.layers if x.name == name), None)

    @property
    def payload(self) -> bytes:
        data = self.layer("data")
        return self.raw[data.start : data.end] if data else b""

    @property
    def src(self) -> str:
        ip = self.layer("IPv4")
        arp = self.layer("ARP")
        return str(ip.fields["src"]) if ip else str(arp.fields["sender_ip"]) if arp else ""

    @property
    def dst(self) -> str:
        ip = self.layer("IPv4")
        arp = self.layer("ARP")
        return str(ip.fields["dst"]) if ip else str(arp.fields["target_ip"]) if arp else ""

    @property
    def summary(self) -> str:
        """One short phrase: what a ladder diagram's arrow is labelled with."""
        tcp, udp, icmp, arp = (self.layer(n) for n in ("TCP", "UDP", "ICMP", "ARP"))
        size = len(self.payload)
        if tcp:
            text = f"TCP [{tcp.fields['flag_names']}]"
            return f"{text} {size} B" if size else text
        if udp:
            return f"UDP {size} B"
        if icmp:
            kind = (int(icmp.fields["type"]), int(icmp.fields["code"]))
            return f"ICMP {ICMP_NAMES.get(kind, f'type {kind[0]} code {kind[1]}')}"
        if arp:
            return "ARP who-has" if arp.fields["op"] == 1 else "ARP is-at"
        return self.layers[-1].name if self.layers else "?"


def flag_names(bits: int) -> str:
    """TCP flags the way tcpdump-style tools spell them: SYN, ACK, PSH..."""
    names = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
    picked = [names[i] for i in range(8) if bits >> i & 1]
    order = ("SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
    return ", ".join(sorted(picked, key=order.index))


def read(path: Path) -> list[Frame]:
    """Every frame of a pcap file, taken apart."""
    return list(frames(path))


def frames(path: Path) -> Iterator[Frame]:
    try:
        reader = PcapReader(str(path))
    except (OSError, Scapy_Exception) as exc:
        raise PacketError(f"cannot read {path} as a capture: {exc}") from None
    with reader:
        number = 0
        while True:
            try:
                # Iterating would cut every frame at 65535 bytes (scapy's default MTU),
                # and a 65507-byte datagram crosses a veth as one frame of 65549.
                packet = reader.read_packet(size=MAX_FRAME)
            except EOFError:
                return
            number += 1
            yield dissect(bytes(packet), float(packet.time), number)


def dissect(raw: bytes, time: float = 0.0, number: int = 1) -> Frame:
    """One Ethernet frame, from its bytes."""
    ether = Ether(raw)
    layers = [
        Layer(
            "Ethernet",
            0,
            ETH_HEADER,
            {"dst": ether.dst, "src": ether.src, "type": ether.type},
        )
    ]
    checks: list[ChecksumCheck] = []
    if ARP in ether:
        arp = ether[ARP]
        layers.append(
            Layer(
                "ARP",
                ETH_HEADER,
                ETH_HEADER + 28,
                {
                    "op": arp.op,
                    "sender_mac": arp.hwsrc,
                    "sender_ip": arp.psrc,
                    "target_mac": arp.hwdst,
                    "target_ip": arp.pdst,
                },
            )
        )
    elif IP in ether:
        _ipv4(ether[IP], raw, layers, checks)
    return Frame(number, time, raw, tuple(layers), tuple(checks))


def _ipv4(ip: Packet, raw: bytes, layers: list[Layer], checks: list[ChecksumCheck]) -> None:
    start = ETH_HEADER
    header_end = start + ip.ihl * 4
    end = min(start + ip.len, len(raw))  # what follows ip.len is Ethernet padding
    layers.append(
        Layer(
            "IPv4",
            start,
            header_end,
            {
                "version": ip.version,
                "header_length": ip.ihl * 4,
                "total_length": ip.len,
                "id": ip.id,
                "flags": int(ip.flags),
                "ttl": ip.ttl,
                "protocol": ip.proto,
                "checksum": ip.chksum,
                "src": ip.src,
                "dst": ip.dst,
            },
        )
    )
    checks.append(ChecksumCheck("IPv4", *_reorder(ipv4_verdict(raw[start:header_end]))))
    if ip.frag or ip.flags.MF:
        layers.append(Layer("data", header_end, end, {"fragment_offset": ip.frag * 8}))
        return
    segment = raw[header_end:end]
    payload_start = header_end
    if ip.proto == 6 and TCP in ip:
        tcp = ip[TCP]
        payload_start = header_end + tcp.dataofs * 4
        flags = int(tcp.flags)
        layers.append(
            Layer(
                "TCP",
                header_end,
                payload_start,
                {
                    "src_port": tcp.sport,
                    "dst_port": tcp.dport,
                    "seq": tcp.seq,
                    "ack": tcp.ack,
                    "header_length": tcp.dataofs * 4,
                    "flags": flags,
                    "flag_names": flag_names(flags),
                    "window": tcp.window,
                    "checksum": tcp.chksum,
                },
            )
        )
        checks.append(_transport("TCP", ip, 6, segment))
    elif ip.proto == 17 and UDP in ip:
        udp = ip[UDP]
        payload_start = header_end + 8
        layers.append(
            Layer(
                "UDP",
                header_end,
                payload_start,
                {
                    "src_port": udp.sport,
                    "dst_port": udp.dport,
                    "length": udp.len,
                    "checksum": udp.chksum,
                },
            )
        )
        checks.append(_transport("UDP", ip, 17, segment))
    elif ip.proto == 1 and ICMP in ip:
        icmp = ip[ICMP]
        payload_start = header_end + 8
        layers.append(
            Layer(
                "ICMP",
                header_end,
                payload_start,
                {"type": icmp.type, "code": icmp.code, "checksum": icmp.chksum},
            )
        )
        checks.append(ChecksumCheck("ICMP", *_reorder(icmp_verdict(segment))))
    layers.append(Layer("data", payload_start, end, {"length": end - payload_start}))


def _transport(name: str, ip: Packet, protocol: int, segment: bytes) -> ChecksumCheck:
    if len(segment) < {6: 20, 17: 8}[protocol]:
        return ChecksumCheck(name, 0, 0, Verdict.INVALID)  # cut short: nothing to sum
    judged, carried, computed = verdict(ip.src, ip.dst, protocol, segment)
    return ChecksumCheck(name, carried, computed, judged)


def _reorder(judged: tuple[Verdict, int, int]) -> tuple[int, int, Verdict]:
    return judged[1], judged[2], judged[0]
