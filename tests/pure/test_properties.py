"""Properties of the protocol code over inputs nobody would write by hand (Hypothesis).

Derandomized: the same examples every run, so a failure is reproducible and the
suite stays deterministic.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from services.protocols.aof import replay
from services.protocols.http11 import HttpError
from services.protocols.http11 import RequestParser as HttpParser
from services.protocols.kv import COMMANDS, Store
from services.protocols.resp import ProtocolError, RequestParser, encode, encode_command
from services.protocols.shout import StreamShouter, shout

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


@SETTINGS
@given(st.binary(max_size=400))
def test_garbage_never_breaks_the_resp_parser(data: bytes) -> None:
    parser = RequestParser()
    try:
        commands = parser.feed(data)
    except ProtocolError as exc:  # the one failure allowed, and it says what went wrong
        commands, message = [], exc.message
    else:
        message = "Protocol error: none"
    assert all(isinstance(c, list) for c in commands)
    assert message.startswith("Protocol error")


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=6))
def test_garbage_never_breaks_the_http_parser(data: bytes, cuts: list[int]) -> None:
    parser = HttpParser()
    status = 200
    try:
        for piece in split(data, cuts):
            parser.feed(piece)
    except HttpError as exc:  # the one failure allowed: an HTTP error status
        status = exc.status
    assert 200 <= status <= 505


names = st.sampled_from(sorted(COMMANDS)).map(str.encode)
args = st.lists(
    st.one_of(st.binary(max_size=8), st.integers(-5, 5).map(lambda i: b"%d" % i)), max_size=4
)


@SETTINGS
@given(st.lists(st.tuples(names, args), max_size=20), st.floats(0, 1e9))
def test_any_command_sequence_gets_a_reply_never_an_exception(
    sequence: list[tuple[bytes, list[bytes]]], now: float
) -> None:
    store = Store()
    for name, arguments in sequence:
        outcome = store.execute([name, *arguments], now)
        encode(outcome.reply)
        encode(outcome.reply, 3)


@SETTINGS
@given(st.binary(max_size=300))
def test_replay_of_any_bytes_accounts_for_every_byte(data: bytes) -> None:
    result = replay(data)
    assert result.valid_bytes + result.dropped_bytes == len(data)
