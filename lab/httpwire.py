"""Reading HTTP/1.1 responses back out of raw bytes, as an experiment received them.

Pure: it is given the bytes a socket script recorded and says what is in them,
keeping the exact line ends so that an experiment can show and check them.
"""

from __future__ import annotations

from dataclasses import dataclass


class WireError(Exception):
    """The bytes are not a sequence of complete, Content-Length framed responses."""


@dataclass(frozen=True)
class RawResponse:
    head: bytes  # status line and header lines, each with its own line end, no blank line
    separator: bytes  # the bytes that end the head: the last line end and the blank line
    body: bytes
    status: int
    headers: dict[str, str]  # names lower-cased

    @property
    def head_lines(self) -> list[bytes]:
        """Each head line with the line end it was sent with."""
        return self.head.splitlines(keepends=True)


def split_responses(data: bytes) -> list[RawResponse]:
    """Every response in ``data``, in order; WireError for anything left over or malformed."""
    responses = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            raise WireError(f"no blank line (\\r\\n\\r\\n) after byte {pos}: head incomplete")
        head = data[pos : end + 2]
        lines = head[:-2].split(b"\r\n")
        try:
            _, code, _ = lines[0].decode("latin-1").split(" ", 2)
            status = int(code)
        except ValueError:
            raise WireError(f"not a status line: {lines[0]!r}") from None
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise WireError(f"not a header line: {line!r}")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body_start = end + 4
        if len(data) < body_start + length:
            raise WireError(
                f"Content-Length {length} but only {len(data) - body_start} body bytes arrived"
            )
        body = data[body_start : body_start + length]
        responses.append(RawResponse(head, data[end : end + 4], body, status, headers))
        pos = body_start + length
    return responses
