"""not-text: a datagram that is not UTF-8 ends the server (the seed's mistake)."""

import os
import socket

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", PORT))
    seen = set()
    while True:
        data, peer = server.recvfrom(65535)
        server.sendto(data.decode("utf-8").upper().encode(), peer)  # strict: bad bytes end it


if __name__ == "__main__":
    main()
