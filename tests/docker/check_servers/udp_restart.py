"""restart: takes 7 s to start (loading something), so it is not back at once."""

import os
import socket
import time

PORT = int(os.environ.get("PORT", "8080"))


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    time.sleep(7)  # slow to start: the first start waits for it, a restart does not
    server.bind(("", PORT))
    seen = set()
    while True:
        data, peer = server.recvfrom(65535)
        server.sendto(
            data.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape"), peer
        )


if __name__ == "__main__":
    main()
