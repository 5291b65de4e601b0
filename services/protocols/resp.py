"""Sans-IO RESP2 (the Redis protocol): an incremental request parser and a reply encoder.

Requests arrive either as RESP arrays of bulk strings (what redis-cli, redis-py
and redis-benchmark send) or as inline commands, a plain line of words, so that
``nc`` and ``telnet`` work too. The parser takes bytes in any pieces and hands
back complete commands; it never touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INLINE = 64 * 1024
MAX_BULK = 512 * 1024 * 1024  # Redis' own proto-max-bulk-len
MAX_ARGS = 1024 * 1024


class ProtocolError(Exception):
    """The stream cannot be parsed any further; the connection must close.

    ``message`` is what Redis itself would send before closing.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- replies -----------------------------------------------------------------


@dataclass(frozen=True)
class Simple:
    """A simple string reply such as +OK."""

    text: str


@dataclass(frozen=True)
class Error:
    """An error reply such as -ERR unknown command."""

    text: str


Reply = Simple | Error | int | bytes | None | list["Reply"] | dict[str, "Reply"]

OK = Simple("OK")
OK_BYTES = b"+OK\r\n"


def encode(reply: Reply, protocol: int = 2) -> bytes:
    """Encode one reply for a connection speaking RESP2 (the default) or RESP3.

    The two differ only where this server's replies differ: a null is ``$-1``
    in RESP2 and ``_`` in RESP3, and a map (HELLO's reply) is a flat array in RESP2.
    """
    if reply is OK:  # the reply to every SET: made once
        return OK_BYTES
    if isinstance(reply, bytes):
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if isinstance(reply, Simple):
        return b"+" + _line(reply.text) + b"\r\n"
    if isinstance(reply, Error):
        return b"-" + _line(reply.text) + b"\r\n"
    if isinstance(reply, bool):  # bool is an int; refuse the ambiguity
        raise TypeError("booleans are not RESP2 replies")
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if reply is None:
        return b"_\r\n" if protocol == 3 else b"$-1\r\n"
    if isinstance(reply, list):
        return b"*%d\r\n" % len(reply) + b"".join(encode(item, protocol) for item in reply)
    if isinstance(reply, dict):
        pairs = [(key.encode(), value) for key, value in reply.items()]
        if protocol == 3:
            return b"%%%d\r\n" % len(pairs) + b"".join(
                encode(k, 3) + encode(v, 3) for k, v in pairs
            )
        return encode([item for pair in pairs for item in pair])
    raise TypeError(f"not a RESP2 reply: {reply!r}")


def _line(text: str) -> bytes:
    # Simple strings and errors cannot carry line breaks.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode a command the way clients do: an array of bulk strings. (Every write db
    logs passes here: built in one join, not through ``encode``'s general case.)"""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in parts])


# --- requests ----------------------------------------------------------------


class RequestParser:
    """Turns a byte stream into commands (lists of byte-string arguments)."""

    def __init__(self, max_bulk: int = MAX_BULK) -> None:
        self.max_bulk = max_bulk
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add bytes; return every command now complete (possibly none).

        Raises ProtocolError when the stream is malformed; commands completed
        before the bad bytes are lost with it, as in Redis.
        """
        self._buf += data
        commands: list[list[bytes]] = []
        while True:
            command = self._next()
            if command is None:
                break
            if command:  # an empty inline line is skipped, as Redis does
                commands.append(command)
        # Drop what was consumed, at most once per feed.
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        return commands

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _next(self) -> list[bytes] | None:
        if self._pos >= len(self._buf):
            return None
        if self._buf[self._pos] == ord("*"):
            return self._multibulk()
        return self._inline()

    def _inline(self) -> list[bytes] | None:
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            if len(self._buf) - self._pos > MAX_INLINE:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        line = bytes(self._buf[self._pos : end]).rstrip(b"\r")
        self._pos = end + 1
        return split_inline(line)

    def _multibulk(self) -> list[bytes] | None:
        # The hot path of every client that pipelines (profiled: most of db's time went
        # here), so it works on local names and offsets and only copies argument bytes.
        buf, start = self._buf, self._pos
        end = buf.find(b"\r\n", start)
        if end < 0:
            if len(buf) - start > 64:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        count = _parse_int(buf[start + 1 : end], "invalid multibulk length")
        if count > MAX_ARGS:
            raise ProtocolError("Protocol error: invalid multibulk length")
        pos, size_limit, args = end + 2, self.max_bulk, []
        for _ in range(count):
            if pos >= len(buf):
                return None  # nothing consumed: the whole command is parsed again later
            if buf[pos] != 36:  # "$"
                raise ProtocolError(f"Protocol error: expected '$', got '{chr(buf[pos])}'")
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > 64:
                    raise ProtocolError("Protocol error: too big inline request")
                return None
            size = _parse_int(buf[pos + 1 : end], "invalid bulk length")
            if size < 0 or size > size_limit:
                raise ProtocolError("Protocol error: invalid bulk length")
            body_start = end + 2
            body_end = body_start + size
            if len(buf) < body_end + 2:
                return None
            if buf[body_end : body_end + 2] != b"\r\n":
                raise ProtocolError("Protocol error: bulk string not followed by CRLF")
            args.append(bytes(buf[body_start:body_end]))
            pos = body_end + 2
        self._pos = pos
        return args


def _parse_int(raw: bytes | bytearray, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ProtocolError(f"Protocol error: {what}") from None


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline command into words; double or single quotes group words.

    A quote left open is a protocol error, as in Redis
    ("Protocol error: unbalanced quotes in request").
    """
    words: list[bytes] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i : i + 1].isspace():
            i += 1
        if i >= n:
            break
        quote = line[i : i + 1]
        if quote in (b'"', b"'"):
            end = line.find(quote, i + 1)
            if end < 0:
                raise ProtocolError("Protocol error: unbalanced quotes in request")
            words.append(line[i + 1 : end])
            i = end + 1
        else:
            start = i
            while i < n and not line[i : i + 1].isspace():
                i += 1
            words.append(line[start:i])
    return words


# --- replies, read back (for the lab's own clients) ---------------------------


def parse_reply(buf: bytes, pos: int = 0) -> tuple[Reply, int] | None:
    """Parse one reply starting at ``pos``; return it and the position after it.

    Returns None when ``buf`` does not yet hold a whole reply. Reads RESP2 and the
    RESP3 this server writes: ``_`` (null) and ``%`` (a map, with bulk-string keys).
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, body, after = buf[pos : pos + 1], buf[pos + 1 : end], end + 2
    if kind == b"+":
        return Simple(body.decode("utf-8", "replace")), after
    if kind == b"-":
        return Error(body.decode("utf-8", "replace")), after
    if kind == b":":
        return _parse_int(body, "invalid integer reply"), after
    if kind == b"$":
        size = _parse_int(body, "invalid bulk length")
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        return bytes(buf[after : after + size]), after + size + 2
    if kind == b"_":
        return None, after
    if kind in (b"*", b"%"):
        count = _parse_int(body, "invalid multibulk length")
        if count < 0:
            return None, after
        items: list[Reply] = []
        for _ in range(count * (2 if kind == b"%" else 1)):
            parsed = parse_reply(buf, after)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        if kind == b"%":
            keys = [
                k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in items[::2]
            ]
            return dict(zip(keys, items[1::2], strict=True)), after
        return items, after
    raise ProtocolError(f"Protocol error: unknown reply type {kind!r}")
