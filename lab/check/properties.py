"""The properties `check` judges a server on, each with the lesson it belongs to.

Each is a claim about what the kernel will show when a well-written server meets one
situation. ``why`` says why it matters, ``fix`` what a server that fails it should do;
the judgement (``lab.check.judge``) says what the kernel did.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Property:
    id: str
    text: str  # the claim, as the result file records it
    why: str
    fix: str
    needs_rule: bool = False  # needs an answer for any text (not only the examples)


STREAM: tuple[Property, ...] = (
    Property(
        "answers",
        "it answers each request correctly as its bytes arrive, with no framing the "
        "protocol does not have",
        "TCP is a byte stream: a request is whatever bytes have arrived, not a message. A "
        "server that waits for a newline or for the client to close never answers.",
        "answer what recv() returned as soon as it returns; do not wait for more than the "
        "protocol says a request is",
    ),
    Property(
        "non-ascii",
        "it answers text that is not ASCII",
        "Sockets carry bytes; text is an encoding of them (UTF-8 here), and one character "
        "can be several bytes.",
        "decode and encode UTF-8 explicitly, on both sides",
        needs_rule=True,
    ),
    Property(
        "split-character",
        "a multi-byte character split across two reads is answered as one character",
        "recv() returns whatever bytes have arrived, so it can end in the middle of a "
        "character; decoding each read on its own then raises UnicodeDecodeError.",
        "decode with an incremental decoder (codecs.getincrementaldecoder('utf-8')) that "
        "keeps an unfinished character until the next read completes it",
        needs_rule=True,
    ),
    Property(
        "large",
        "a large message is answered whole",
        "One send() of many kilobytes arrives as many reads; the answer must cover all.",
        "keep reading until the request is complete (or answer each piece), and send "
        "every byte of the answer (sendall)",
        needs_rule=True,
    ),
    Property(
        "slow-reader",
        "a large message to a slow reader arrives whole and in order",
        "When the reader is slow its receive buffer fills, then the server's send buffer: "
        "a blocking send() waits, a non-blocking one takes only part of the data.",
        "use sendall(), or loop on send()'s count; in asyncio, write() and await drain()",
        needs_rule=True,
    ),
    Property(
        "partial-send",
        "when the kernel takes only part of a send, the server sends the rest",
        "send() returns how many bytes the kernel took. On a socket with a timeout (and so "
        "non-blocking inside Python) or when a signal interrupts it, that can be fewer than "
        "asked; the rest is lost unless the server sends it.",
        "use sendall(), or loop until send() has taken every byte",
        needs_rule=True,
    ),
    Property(
        "sequential",
        "it serves clients one after another",
        "accept() returns one connection; serving the next needs another accept().",
        "accept in a loop: `while True: conn, addr = server.accept()`",
    ),
    Property(
        "concurrent",
        "it serves two clients at once",
        "The kernel completes handshakes for the listening socket on its own; a client "
        "that is never accept()ed waits in the backlog with no answer.",
        "serve each connection in its own thread (or use selectors/asyncio)",
    ),
    Property(
        "reset",
        "it survives a client's reset and goes on serving",
        "A client that ends with RST (a crash, SO_LINGER 0) makes the server's next recv() "
        "or send() fail with ECONNRESET or EPIPE: an error of that connection only.",
        "catch ConnectionError around one connection's loop, close that connection, and "
        "go on accepting",
    ),
    Property(
        "half-close",
        "it answers a half-close and then closes, leaving nothing in CLOSE_WAIT and no "
        "descriptor behind over many connections",
        "A client's shutdown(SHUT_WR) sends FIN: recv() returns b''. Until the server "
        "closes its socket, the kernel keeps it in CLOSE_WAIT and the descriptor stays open.",
        "when recv() returns b'', send what is left and close the connection (a `with` "
        "block does it)",
    ),
    Property(
        "reachable",
        "it is reachable from another host",
        "A socket bound to 127.0.0.1 only gets connections from its own host; 0.0.0.0 (or "
        "'') takes them on every address the host owns.",
        "bind to ('', port) or ('0.0.0.0', port)",
    ),
    Property(
        "restart",
        "it can be restarted at once after being killed with a client connected",
        "The killed server's connection outlives it in the kernel (FIN_WAIT2, then "
        "TIME_WAIT for 60 s), and it holds the port: bind() fails with EADDRINUSE.",
        "setsockopt(SOL_SOCKET, SO_REUSEADDR, 1) before bind()",
    ),
    Property(
        "not-text",
        "it survives bytes that are not text and goes on serving",
        "Anyone can send any bytes to a port; one bad request must not end the server.",
        "decode with errors='replace' (or catch UnicodeDecodeError) for one request, and go on",
    ),
)

DATAGRAM: tuple[Property, ...] = (
    Property(
        "answers",
        "it answers each datagram correctly",
        "A datagram is one message: one recvfrom() returns it whole, and one sendto() answers it.",
        "answer each datagram recvfrom() returns with one sendto()",
    ),
    Property(
        "large",
        "it answers whole datagrams up to the largest UDP payload (65507 bytes)",
        "recvfrom(n) returns at most n bytes of a datagram and the kernel silently "
        "discards the rest (MSG_TRUNC): nothing tells the server it lost data.",
        "receive with a buffer of 65535 bytes: recvfrom(65535)",
        needs_rule=True,
    ),
    Property(
        "sender-address",
        "it answers each sender at the address and port the datagram came from",
        "UDP has no connection: the only way back is the address recvfrom() returned.",
        "sendto(reply, address) with the address recvfrom() returned",
    ),
    Property(
        "non-ascii",
        "it answers text that is not ASCII",
        "Sockets carry bytes; text is an encoding of them (UTF-8 here).",
        "decode and encode UTF-8 explicitly",
        needs_rule=True,
    ),
    Property(
        "not-text",
        "it survives a datagram that is not UTF-8 and goes on answering",
        "Anyone can send any datagram to a port; one bad datagram must not end the server "
        "(afterwards every datagram is refused: ICMP port unreachable).",
        "decode with errors='replace' (or catch UnicodeDecodeError) for one datagram, and go on",
    ),
    Property(
        "reachable",
        "it is reachable from another host",
        "A socket bound to 127.0.0.1 only gets datagrams sent to its own host's loopback.",
        "bind to ('', port) or ('0.0.0.0', port)",
    ),
    Property(
        "restart",
        "it answers again after a restart, to a client that kept its socket",
        "UDP keeps no connection: a restarted server answers the next datagram, and the "
        "client's socket never knew it was gone.",
        "nothing, usually: bind the same port again",
    ),
)


def by_id(stream: bool) -> dict[str, Property]:
    return {p.id: p for p in (STREAM if stream else DATAGRAM)}
