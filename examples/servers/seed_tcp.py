"""The TCP server from the note the lab grew from (../shared/seed), as it was written.

Only what the note leaves implicit is added: `import socket`, and the call that starts
it. `socklab check examples/servers/seed_tcp.py --as tcp-shout` shows what it gets
wrong (docs/checking.md); tcp_shout.py is the version that passes.
"""

import socket


def tcp_socket_server(port: int = 8080):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("", port))
    server.listen()

    conn, addr = server.accept()

    print(f"Accepted connection: {conn} on address {addr}")

    try:
        while True:
            data = conn.recv(1000)
            data = data.decode(
                "utf-8"
            )  # binary encoding is sent over the network, decode it
            if not data:
                break
            print(f"Received: {data}")

            shout = data.upper()
            conn.send(
                shout.encode("utf-8")
            )  # encode to binary and send over the network
            print(f"Sent: {shout}")
    except ConnectionResetError:
        print("Connection dropped.")
        conn.close()
        server.close()


if __name__ == "__main__":
    tcp_socket_server()
