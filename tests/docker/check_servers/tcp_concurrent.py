"""concurrent: serves clients one at a time, with no thread (the next waits in the backlog)."""

import codecs
import os
import socket

PORT = int(os.environ.get("PORT", "8080"))

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("", PORT))
server.listen()
while True:
    conn, _ = server.accept()
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(decoder.decode(data).upper().encode("utf-8", "surrogateescape"))
        except ConnectionError:
            pass
