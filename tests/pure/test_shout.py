"""Uppercasing: whole messages, streams in every split, and undecodable bytes."""

from __future__ import annotations

import pytest

from lab.services.protocols.shout import StreamShouter, shout

CASES = [
    # (input, expected): the documented behaviour, one row per rule
    (b"", b""),
    (b"hello", b"HELLO"),
    (b"Hello, World! 123", b"HELLO, WORLD! 123"),
    ("héllo wörld".encode(), "HÉLLO WÖRLD".encode()),
    ("straße".encode(), b"STRASSE"),  # longer than the input
    ("привет".encode(), "ПРИВЕТ".encode()),
    ("日本".encode(), "日本".encode()),  # no case: unchanged
    ("emoji 🙂 ok".encode(), "EMOJI 🙂 OK".encode()),
    (b"\x00nul\x00", b"\x00NUL\x00"),
    (b"\xff\xfe bad", b"\xff\xfe BAD"),  # invalid bytes pass through unchanged
    (b"a\xc3(b", b"A\xc3(B"),  # broken two-byte sequence
    (b"\xed\xa0\x80x", b"\xed\xa0\x80X"),  # an encoded surrogate is invalid UTF-8
    (b"tail \xe2\x82", b"TAIL \xe2\x82"),  # truncated at the end
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_shout_message(data: bytes, expected: bytes) -> None:
    assert shout(data) == expected


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_stream_fed_one_byte_at_a_time(data: bytes, expected: bytes) -> None:
    shouter = StreamShouter()
    out = b"".join(shouter.feed(data[i : i + 1]) for i in range(len(data)))
    assert out + shouter.finish() == expected


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_stream_every_two_way_split(data: bytes, expected: bytes) -> None:
    for cut in range(len(data) + 1):
        shouter = StreamShouter()
        out = shouter.feed(data[:cut]) + shouter.feed(data[cut:]) + shouter.finish()
        assert out == expected, f"split at {cut}"


def test_split_character_is_held_back_until_complete() -> None:
    shouter = StreamShouter()
    euro = "€".encode()  # three bytes
    assert shouter.feed(b"x" + euro[:2]) == b"X"
    assert shouter.pending == 2
    assert shouter.feed(euro[2:]) == euro
    assert shouter.pending == 0


def test_dangling_partial_character_is_flushed_as_is_at_end() -> None:
    shouter = StreamShouter()
    assert shouter.feed(b"ok\xc3") == b"OK"
    assert shouter.finish() == b"\xc3"


def test_every_single_byte_value_survives() -> None:
    data = bytes(range(256))
    out = shout(data)
    # ASCII letters are uppercased; every byte that is not valid UTF-8 on its own is kept.
    assert out == data.upper()
