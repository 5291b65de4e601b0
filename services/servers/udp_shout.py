"""UDP shout server: the seed's ``udp_socket_server`` done right.

One reply datagram per datagram, sent from the same socket (so from the same
port the client wrote to), uppercased with ``services.protocols.shout.shout``. No state is
kept between datagrams: that is why a UDP client keeps working across a server
restart ("udp works tho").

Edge cases, defined:
- an empty datagram gets an empty reply (asyncio's transport cannot send one,
  hence a plain socket here);
- a reply that uppercasing made larger than the largest UDP payload is sent
  back unchanged instead (it fitted on the way in), and the log says so.
"""

from __future__ import annotations

import signal
import socket
import threading

from ..protocols.shout import shout
from ..runtime.common import ConfigError, Identity, env_int, log, peer_text

# The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
# A buffer of 65535 never truncates one (the seed's recvfrom(1000) would).
MAX_PAYLOAD = 65507
RECV_BUFFER = 65535
STOP_CHECK = 0.2  # seconds between looks at the stop flag


class UdpShoutServer:
    def __init__(
        self, host: str, port: int, service: str = "udp-shout", log_datagrams: bool = True
    ) -> None:
        self.service = service
        self.log_datagrams = log_datagrams
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for bursts: a datagram that finds the buffer full is dropped by the kernel.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(STOP_CHECK)
        self.stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    data, peer = self.sock.recvfrom(RECV_BUFFER)
                except TimeoutError:
                    continue
                except OSError as exc:
                    # e.g. ECONNREFUSED left by an ICMP error for an earlier reply
                    log(self.service, f"receive error: {exc!r}")
                    continue
                self.answer(data, peer)
        finally:
            self.sock.close()

    def answer(self, data: bytes, peer: tuple[str, int]) -> None:
        reply = shout(data)
        note = ""
        if len(reply) > MAX_PAYLOAD:
            reply, note = data, " (uppercased reply too large for one datagram: echoed unchanged)"
        if self.log_datagrams:
            log(self.service, f"datagram {peer_text(peer)}: {len(data)} bytes{note}")
        try:
            self.sock.sendto(reply, peer)
        except OSError as exc:
            log(self.service, f"send error to {peer_text(peer)}: {exc!r}")

    def stop(self) -> None:
        self.stopped.set()


def main() -> None:
    identity = Identity.here("udp-shout")
    try:
        port = env_int("SHOUT_PORT", 8080)
        log_datagrams = env_int("SHOUT_LOG_DATAGRAMS", 1) == 1
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    server = UdpShoutServer("0.0.0.0", port, identity.service, log_datagrams)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: server.stop())
    log(identity.service, f"listening on udp 0.0.0.0:{port}")
    server.serve()
    log(identity.service, "stopped")


if __name__ == "__main__":
    main()
