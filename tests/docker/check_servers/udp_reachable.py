"""reachable: bound to 127.0.0.1."""

import os
import socket

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", PORT))  # loopback only
    seen = set()
    while True:
        data, peer = server.recvfrom(65535)
        server.sendto(
            data.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape"), peer
        )


if __name__ == "__main__":
    main()
