"""sender-address: answers from a new socket, so from another port."""

import os
import socket

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", PORT))
    seen = set()
    while True:
        data, peer = server.recvfrom(65535)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # answers from another port
        other.sendto(
            data.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape"), peer
        )
        other.close()


if __name__ == "__main__":
    main()
