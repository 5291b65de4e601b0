"""The seed's TCP server, fixed: it passes every property `socklab check` judges.

    socklab check examples/servers/tcp_shout.py --as tcp-shout

What changed, and why (docs/checking.md): SO_REUSEADDR before bind (restart at once);
accept in a loop, one thread per client (one after another, two at once); an
incremental decoder (a character split across reads); sendall (every byte of the
answer); a reset or undecodable bytes end one connection, never the server; and
`with conn` closes a connection once the client has half-closed (no CLOSE_WAIT).
"""

import codecs
import os
import socket
import threading


def serve(conn: socket.socket) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    with conn:
        try:
            while data := conn.recv(65536):
                text = decoder.decode(data)
                conn.sendall(text.upper().encode("utf-8", "surrogateescape"))
            conn.sendall(decoder.decode(b"", final=True).upper().encode("utf-8", "surrogateescape"))
        except ConnectionError:
            pass  # this client reset or went away: the others are served on


def tcp_socket_server(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen()
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    tcp_socket_server(int(os.environ.get("PORT", "8080")))
