"""split-character: decodes each read on its own (with replacement, so it lives)."""

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
                text = data.decode("utf-8", "replace")  # each read decoded on its own
                conn.sendall(text.upper().encode())
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
