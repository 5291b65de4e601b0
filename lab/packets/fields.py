"""Where each field of a dissected layer lies in the frame's bytes: what the hex view marks.

A table, sans-IO: for every layer :mod:`lab.packets.dissect` makes and every field it
names in ``Layer.fields``, the field's bytes as (offset from the layer's first byte,
length). Fields that share bytes (IPv4's version and header length, its flags and
fragment offset, TCP's data offset and flags) get the bytes that hold them: a field of
a few bits is shown as the byte or two it sits in. Derived fields point at the bytes
they are derived from (``flag_names``: the flags byte). The one field that lies
outside its own layer is a fragment's offset, which the IPv4 header before it carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.packets.dissect import Layer

Span = tuple[int, int]  # offset from the layer's start, length

SPANS: dict[str, dict[str, Span]] = {
    "Ethernet": {"dst": (0, 6), "src": (6, 6), "type": (12, 2)},
    # hardware and protocol types and sizes (bytes 0-5) are not shown by the dissector
    "ARP": {
        "op": (6, 2),
        "sender_mac": (8, 6),
        "sender_ip": (14, 4),
        "target_mac": (18, 6),
        "target_ip": (24, 4),
    },
    "IPv4": {
        "version": (0, 1),  # the high four bits
        "header_length": (0, 1),  # the low four bits, in 32-bit words
        "total_length": (2, 2),
        "id": (4, 2),
        "flags": (6, 1),  # the high three bits; the fragment offset shares the bytes
        "ttl": (8, 1),
        "protocol": (9, 1),
        "checksum": (10, 2),
        "src": (12, 4),
        "dst": (16, 4),
    },
    "TCP": {
        "src_port": (0, 2),
        "dst_port": (2, 2),
        "seq": (4, 4),
        "ack": (8, 4),
        "header_length": (12, 1),  # the high four bits, in 32-bit words
        "flags": (12, 2),  # eight flags in byte 13, the ninth (NS) in byte 12's low bit
        "flag_names": (13, 1),  # spelled from the eight flags of byte 13
        "window": (14, 2),
        "checksum": (16, 2),
    },
    "UDP": {"src_port": (0, 2), "dst_port": (2, 2), "length": (4, 2), "checksum": (6, 2)},
    "ICMP": {"type": (0, 1), "code": (1, 1), "checksum": (2, 2)},
    "VXLAN": {"flags": (0, 1), "vni": (4, 3)},
}

# A field of one layer whose bytes another carries: (the carrier, offset in it, length).
ELSEWHERE: dict[tuple[str, str], tuple[str, int, int]] = {
    ("data", "fragment_offset"): ("IPv4", 6, 2),
}


def layer_spans(layers: Sequence[Layer]) -> list[dict[str, tuple[int, int]]]:
    """Each layer's fields as absolute [start, end) byte offsets in the frame, in the
    order of ``layers``. A field this table does not know has no span (the tests keep
    the table whole)."""
    out: list[dict[str, tuple[int, int]]] = []
    for i, layer in enumerate(layers):
        table = SPANS.get(layer.name, {})
        spans: dict[str, tuple[int, int]] = {}
        for name in layer.fields:
            if name in table:
                offset, length = table[name]
                spans[name] = (layer.start + offset, layer.start + offset + length)
            elif layer.name == "data" and name == "length":
                spans[name] = (layer.start, layer.end)  # the data itself
            elif (layer.name, name) in ELSEWHERE:
                carrier, offset, length = ELSEWHERE[layer.name, name]
                before = next((x for x in reversed(layers[:i]) if x.name == carrier), None)
                if before is not None:
                    spans[name] = (before.start + offset, before.start + offset + length)
        out.append(spans)
    return out
