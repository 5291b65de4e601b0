"""RESP2 framing: requests in any pieces, inline commands, malformed streams, replies."""

from __future__ import annotations

import pytest

from lab.services.protocols.resp import (
    OK,
    Error,
    ProtocolError,
    Reply,
    RequestParser,
    Simple,
    encode,
    encode_command,
    parse_reply,
    split_inline,
)

REQUESTS = [
    # (stream, commands it holds)
    (b"*1\r\n$4\r\nPING\r\n", [[b"PING"]]),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", [[b"SET", b"k", b""]]),
    (b"*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n", [[b"ECHO", b"a\r\nb"]]),  # binary-safe bulk
    (b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", [[b"PING"], [b"PING"]]),  # pipelined
    (b"PING\r\n", [[b"PING"]]),  # inline, as nc sends it
    (b"PING\n", [[b"PING"]]),  # inline with a bare LF
    (b"SET k  'two words'\r\n", [[b"SET", b"k", b"two words"]]),
    (b'ECHO "a b"\r\nPING\r\n', [[b"ECHO", b"a b"], [b"PING"]]),
    (b"\r\n\r\nPING\r\n", [[b"PING"]]),  # empty inline lines are skipped
    (b"*0\r\nPING\r\n", [[b"PING"]]),  # an empty array is no command
    (b"*-1\r\n", []),
]


@pytest.mark.parametrize(("stream", "commands"), REQUESTS)
def test_parse_whole(stream: bytes, commands: list[list[bytes]]) -> None:
    assert RequestParser().feed(stream) == commands


@pytest.mark.parametrize(("stream", "commands"), REQUESTS)
def test_parse_one_byte_at_a_time(stream: bytes, commands: list[list[bytes]]) -> None:
    parser = RequestParser()
    got = [c for i in range(len(stream)) for c in parser.feed(stream[i : i + 1])]
    assert got == commands
    assert parser.buffered == 0


MALFORMED = [
    (b"*x\r\n", "invalid multibulk length"),
    (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
    (b"*1\r\n$x\r\n", "invalid bulk length"),
    (b"*1\r\n$-5\r\n", "invalid bulk length"),
    (b"*1\r\n$2\r\nabcd\r\n", "bulk string not followed by CRLF"),
    (b"ECHO 'open\r\n", "unbalanced quotes"),
]


@pytest.mark.parametrize(("stream", "message"), MALFORMED)
def test_malformed_streams_raise_protocol_error(stream: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        RequestParser().feed(stream)
    assert message in caught.value.message


def test_endless_inline_line_is_refused() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError, match="too big inline request"):
        for _ in range(100):
            parser.feed(b"x" * 1024)


def test_partial_bulk_waits_without_copying_the_head_twice() -> None:
    parser = RequestParser()
    assert parser.feed(b"*2\r\n$3\r\nGET\r\n$5\r\nab") == []
    assert parser.feed(b"cde\r\n") == [[b"GET", b"abcde"]]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"", []),
        (b"   ", []),
        (b"GET key", [b"GET", b"key"]),
        (b"  GET\tkey  ", [b"GET", b"key"]),
        (b'SET k ""', [b"SET", b"k", b""]),
        (b"SET k 'a \"b\" c'", [b"SET", b"k", b'a "b" c']),
    ],
)
def test_split_inline(line: bytes, words: list[bytes]) -> None:
    assert split_inline(line) == words


REPLIES: list[tuple[Reply, bytes]] = [
    (OK, b"+OK\r\n"),
    (Simple("PONG"), b"+PONG\r\n"),
    (Error("ERR bad"), b"-ERR bad\r\n"),
    (0, b":0\r\n"),
    (-42, b":-42\r\n"),
    (b"", b"$0\r\n\r\n"),
    (b"a\r\nb", b"$4\r\na\r\nb\r\n"),
    (None, b"$-1\r\n"),
    ([], b"*0\r\n"),
    ([b"a", 1, None, [OK]], b"*4\r\n$1\r\na\r\n:1\r\n$-1\r\n*1\r\n+OK\r\n"),
]


@pytest.mark.parametrize(("reply", "wire"), REPLIES)
def test_encode_reply(reply: Reply, wire: bytes) -> None:
    assert encode(reply) == wire


@pytest.mark.parametrize(("reply", "wire"), REPLIES)
def test_parse_reply_round_trip(reply: Reply, wire: bytes) -> None:
    assert parse_reply(wire) == (reply, len(wire))
    for cut in range(len(wire)):
        assert parse_reply(wire[:cut]) is None, f"complete after {cut} of {len(wire)} bytes?"


def test_error_text_cannot_break_the_line() -> None:
    assert encode(Error("ERR a\r\nb")) == b"-ERR a  b\r\n"


def test_encode_command_is_what_clients_send() -> None:
    assert encode_command("SET", b"k", 5) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
    assert RequestParser().feed(encode_command("SET", b"k", 5)) == [[b"SET", b"k", b"5"]]


def test_booleans_are_refused() -> None:
    with pytest.raises(TypeError):
        encode(True)


def test_resp3_differs_only_in_nulls_and_maps() -> None:
    assert encode(None, 3) == b"_\r\n"
    assert encode([None], 3) == b"*1\r\n_\r\n"
    assert encode({"proto": 3}, 3) == b"%1\r\n$5\r\nproto\r\n:3\r\n"
    assert encode({"proto": 2}) == b"*2\r\n$5\r\nproto\r\n:2\r\n"
