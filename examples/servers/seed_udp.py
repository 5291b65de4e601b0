"""The UDP server from the note the lab grew from (../shared/seed), as it was written.

Only what the note leaves implicit is added: `import socket`, and the call that starts
it. `socklab check examples/servers/seed_udp.py --as udp-shout` shows what it gets
wrong (docs/checking.md); udp_shout.py is the version that passes.
"""

import socket


def udp_socket_server(port: int = 8080):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("", port))

    try:
        while True:
            data, address = server.recvfrom(1000)

            data = data.decode("utf-8")
            print(f"Received: {data}")

            shout = data.upper()

            server.sendto(shout.encode("utf-8"), address)
            print(f"Sent: {shout}")

    finally:
        server.close()


if __name__ == "__main__":
    udp_socket_server()
