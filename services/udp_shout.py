"""UDP shout server: the seed's ``udp_socket_server`` done right.

One reply datagram per datagram, sent from the same socket (so from the same
port the client wrote to), uppercased with ``services.shout.shout``. No state is
kept between datagrams: that is why a UDP client keeps working across a server
restart ("udp works tho").
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from services.common import Identity, env_int, log, peer_text, run_until_signalled
from services.shout import shout

# The largest UDP payload over IPv4 is 65507 bytes; a buffer this size never
# truncates one (the seed's recvfrom(1000) would).
MAX_DATAGRAM = 65535


class ShoutProtocol(asyncio.DatagramProtocol):
    def __init__(self, service: str, log_datagrams: bool = True) -> None:
        self.service = service
        self.log_datagrams = log_datagrams
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in all but name: 3.11 does not declare the base class.
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Room for bursts: a datagram that finds the buffer full is dropped.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if self.log_datagrams:
            log(self.service, f"datagram {peer_text(addr)}: {len(data)} bytes")
        self.transport.sendto(shout(data), addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the client went away). Not fatal.
        log(self.service, f"send error: {exc!r}")


async def start(
    host: str, port: int, service: str = "udp-shout", log_datagrams: bool = True
) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: ShoutProtocol(service, log_datagrams), local_addr=(host, port)
    )
    return transport


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("udp-shout")
    port = env_int("SHOUT_PORT", 8080)
    log_datagrams = env_int("SHOUT_LOG_DATAGRAMS", 1) == 1
    transport = await start("0.0.0.0", port, identity.service, log_datagrams)
    log(identity.service, f"listening on udp 0.0.0.0:{port}")
    try:
        await stop.wait()
    finally:
        transport.close()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
