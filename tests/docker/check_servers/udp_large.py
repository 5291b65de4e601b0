"""large: a 1000-byte buffer cuts longer datagrams short."""

import os
import socket

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", PORT))
    seen = set()
    while True:
        data, peer = server.recvfrom(1000)  # the seed's buffer: longer datagrams are cut
        server.sendto(
            data.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape"), peer
        )


if __name__ == "__main__":
    main()
