"""Properties of the protocol code over inputs nobody would write by hand (Hypothesis).

Derandomized: the same examples every run, so a failure is reproducible and the
suite stays deterministic.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.services.protocols.aof import replay
from lab.services.protocols.http11 import HttpError
from lab.services.protocols.http11 import RequestParser as HttpParser
from lab.services.protocols.kv import COMMANDS, Store
from lab.services.protocols.resp import (
    ProtocolError,
    RequestParser,
    encode,
    encode_command,
    parse_reply,
)
from lab.services.protocols.shout import StreamShouter, shout

SETTINGS = settings(derandomize=True, max_examples=300, deadline=None)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=8))
def test_a_stream_shouts_the_same_however_it_is_cut(data: bytes, cuts: list[int]) -> None:
    shouter = StreamShouter()
    out = b"".join(shouter.feed(piece) for piece in split(data, cuts)) + shouter.finish()
    assert out == shout(data)


@SETTINGS
@given(st.binary(max_size=300))
def test_shouting_keeps_every_byte_that_is_not_text_in_order(data: bytes) -> None:
    def undecodable(b: bytes) -> list[str]:
        return [c for c in b.decode("utf-8", "surrogateescape") if "\udc80" <= c <= "\udcff"]

    assert undecodable(shout(data)) == undecodable(data)


@SETTINGS
@given(
    st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_any_commands_survive_framing_and_any_cut(
    commands: list[list[bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode_command(*c) for c in commands)
    parser = RequestParser()
    got = [c for piece in split(stream, cuts) for c in parser.feed(piece)]
    assert got == commands


def resp_outcome(pieces: list[bytes]) -> tuple[list[list[bytes]], str]:
    """What the RESP parser makes of the pieces: the commands, and the error if one ended it."""
    parser = RequestParser()
    commands: list[list[bytes]] = []
    try:
        for piece in pieces:
            commands += parser.feed(piece)
    except ProtocolError as exc:
        return commands, exc.message
    return commands, ""


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=6))
def test_garbage_is_parsed_the_same_however_it_is_cut(data: bytes, cuts: list[int]) -> None:
    whole = resp_outcome([data])
    assert resp_outcome(split(data, cuts)) == whole
    assert resp_outcome([data[i : i + 1] for i in range(len(data))]) == whole
    commands, error = whole
    assert all(c and all(isinstance(a, bytes) for a in c) for c in commands)
    assert error == "" or error.startswith("Protocol error")


HTTP_ERRORS = {400, 408, 411, 413, 414, 431, 501, 505}  # what the parser may refuse with


def http_outcome(pieces: list[bytes]) -> tuple[list[tuple[str, str, bytes]], int]:
    parser = HttpParser()
    requests: list[tuple[str, str, bytes]] = []
    try:
        for piece in pieces:
            requests += [(r.method, r.target, r.body) for r in parser.feed(piece)]
    except HttpError as exc:
        return requests, exc.status
    return requests, parser.failed.status if parser.failed else 0


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=6))
def test_http_garbage_is_refused_with_a_status_the_same_however_it_is_cut(
    data: bytes, cuts: list[int]
) -> None:
    whole = http_outcome([data])
    assert http_outcome(split(data, cuts)) == whole
    requests, status = whole
    assert status == 0 or status in HTTP_ERRORS
    assert all(target.startswith("/") for _, target, _ in requests)


@SETTINGS
@given(st.lists(st.sampled_from([b"GET", b"PUT", b"POST"]), max_size=4))
def test_http_garbage_after_good_requests_keeps_the_good_ones(methods: list[bytes]) -> None:
    good = b"".join(m + b" /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz" for m in methods)
    requests, status = http_outcome([good + b"\x00garbage\r\n\r\n"])
    assert [m for m, _, _ in requests] == [m.decode() for m in methods]
    assert status == 400


names = st.sampled_from(sorted(COMMANDS)).map(str.encode)
args = st.lists(
    st.one_of(st.binary(max_size=8), st.integers(-5, 5).map(lambda i: b"%d" % i)), max_size=4
)


@SETTINGS
@given(st.lists(st.tuples(names, args), max_size=20), st.floats(0, 1e9))
def test_every_reply_to_any_command_is_one_complete_resp_frame(
    sequence: list[tuple[bytes, list[bytes]]], now: float
) -> None:
    store = Store()
    for name, arguments in sequence:
        outcome = store.execute([name, *arguments], now)
        for version in (2, 3):
            frame = encode(outcome.reply, version)
            parsed = parse_reply(frame)
            assert parsed is not None, (name, arguments, frame)
            assert parsed[1] == len(frame)  # exactly one reply, every byte of it


@SETTINGS
@given(st.binary(max_size=300))
def test_replay_of_any_bytes_accounts_for_every_byte(data: bytes) -> None:
    result = replay(data)
    assert result.valid_bytes + result.dropped_bytes == len(data)
