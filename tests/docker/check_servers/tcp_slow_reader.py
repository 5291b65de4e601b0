"""slow-reader (and partial-send): a send timeout too short for a slow reader; what did
not go in time is dropped."""

import codecs
import os
import socket
import threading

PORT = int(os.environ.get("PORT", "8080"))
LEAKED = []


def shout(decoder, data: bytes) -> bytes:
    return decoder.decode(data).upper().encode("utf-8", "surrogateescape")


def serve(conn: socket.socket, server: socket.socket) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    with conn:
        try:
            while data := conn.recv(65536):
                conn.settimeout(0.15)  # a reader 150 ms behind is given up on
                try:
                    conn.sendall(shout(decoder, data))
                except TimeoutError:
                    pass  # the rest of this answer is dropped
                conn.settimeout(None)
        except ConnectionError:
            pass


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", PORT))
    server.listen()
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return  # the listening socket was closed
        threading.Thread(target=serve, args=(conn, server), daemon=True).start()


if __name__ == "__main__":
    main()
