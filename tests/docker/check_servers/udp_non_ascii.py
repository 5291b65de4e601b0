"""non-ascii: uppercases bytes, so only ASCII letters change."""

import os
import socket

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", PORT))
    seen = set()
    while True:
        data, peer = server.recvfrom(65535)
        server.sendto(data.upper(), peer)  # bytes.upper(): ASCII letters only


if __name__ == "__main__":
    main()
