"""A line-based key-value server: `SET key value` answers OK, `GET key` the value.

socklab check examples/servers/kv.py --as examples/assignments/kv.yaml
"""

import os
import socketserver

STORE: dict[str, str] = {}


class Lines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:  # one request a line, however the bytes arrive
            words = raw.decode("utf-8", "replace").split()
            if len(words) == 3 and words[0].upper() == "SET":
                STORE[words[1]] = words[2]
                answer = "OK"
            elif len(words) == 2 and words[0].upper() == "GET":
                answer = STORE.get(words[1], "")
            else:
                answer = "ERR"
            self.wfile.write(f"{answer}\n".encode())


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that reset: the others are served on


if __name__ == "__main__":
    Server(("", int(os.environ.get("PORT", "7001"))), Lines).serve_forever()
