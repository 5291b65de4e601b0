"""Switch transmit checksum offload: ``python3 -m services.helpers.netadmin IFACE|all [on|off]``.

This is ``ethtool -K IFACE tx on|off`` through the same ioctl (SIOCETHTOOL), so
that no extra package is needed. It runs in a helper container that shares a
lab host's network namespace and holds CAP_NET_ADMIN; prints the state before
the change (or only the state, without on|off), so the caller can put it back.
``all`` is every interface of the host but loopback: eth0 at first, eth1 after
the host was disconnected and connected again, one per network on a router.

A veth leaves TCP and UDP checksums unfinished (checksum offload: the "card"
would do it, and a veth never has to). With offload off the kernel computes
them in software, and a capture shows the sums a real wire would carry.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17
IFREQ_SIZE = 40


def _ethtool(interface: str, command: int, value: int = 0) -> int:
    data = ctypes.create_string_buffer(struct.pack("II", command, value))
    request = struct.pack("16sP", interface.encode(), ctypes.addressof(data))
    request += b"\x00" * (IFREQ_SIZE - len(request))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
    return int(struct.unpack("II", data.raw[:8])[1])


def tx_checksum(interface: str) -> bool:
    return bool(_ethtool(interface, ETHTOOL_GTXCSUM))


def set_tx_checksum(interface: str, on: bool) -> None:
    _ethtool(interface, ETHTOOL_STXCSUM, int(on))


def interfaces(names: list[str]) -> list[str]:
    """The interfaces that are not loopback (none while the host is cut off)."""
    return [n for n in names if n != "lo"]


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[1:] not in ([], ["on"], ["off"]):
        print("usage: python3 -m services.helpers.netadmin IFACE|all [on|off]", file=sys.stderr)
        return 2
    chosen = (
        interfaces([name for _, name in socket.if_nameindex()])
        if argv[0] in ("all", "auto")
        else [argv[0]]
    )
    for interface in chosen:
        try:
            before = tx_checksum(interface)
            if argv[1:]:
                set_tx_checksum(interface, argv[1] == "on")
        except OSError as exc:
            print(f"{interface}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"{interface} {'on' if before else 'off'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
