"""Splitting raw bytes into HTTP responses, as the http-bytes experiment does."""

from __future__ import annotations

import pytest

from lab.services.protocols.http11 import WireError, split_responses

ONE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
TWO = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_one_response() -> None:
    (r,) = split_responses(ONE)
    assert (r.status, r.body, r.separator) == (200, b"hello", b"\r\n\r\n")
    assert r.headers == {"content-type": "text/plain", "content-length": "5"}
    assert r.head_lines == [
        b"HTTP/1.1 200 OK\r\n",
        b"Content-Type: text/plain\r\n",
        b"Content-Length: 5\r\n",
    ]


def test_pipelined_responses_split_by_content_length() -> None:
    assert [r.status for r in split_responses(ONE + TWO + ONE)] == [200, 404, 200]


def test_a_body_that_looks_like_a_response_stays_a_body() -> None:
    body = b"HTTP/1.1 500 Fake\r\n\r\n"
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    (r,) = split_responses(data)
    assert r.body == body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ONE[:20], "head incomplete"),
        (ONE[:-1], "Content-Length 5 but only 4"),
        (b"NONSENSE\r\n\r\n", "not a status line"),
        (b"HTTP/1.1 200 OK\r\nbad\r\n\r\n", "not a header line"),
    ],
)
def test_incomplete_or_malformed(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        split_responses(data)
