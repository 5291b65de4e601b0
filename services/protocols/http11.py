"""Sans-IO HTTP/1.1: an incremental request parser and a response writer (the http
service's), and a response splitter (what a client received, taken apart).

Framing follows RFC 9112: a request line, header lines ending in CRLF, an empty
line (so the headers end at the first ``\\r\\n\\r\\n``), then exactly
``Content-Length`` bytes of body. Bare LF line ends are accepted, as most
servers do. Transfer-Encoding is refused with 501: this server only frames
bodies by length, and guessing would let requests be smuggled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
VERSION = re.compile(rb"^HTTP/1\.[01]$")

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """A request that must be answered with ``status`` and the connection closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {REASONS.get(status, '')}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    request_line: int = 8 * 1024
    header_section: int = 32 * 1024
    body: int = 1024 * 1024


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class RequestParser:
    """Turns a byte stream into requests. Feed bytes; take the requests completed."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._buf = bytearray()
        self._head: Request | None = None  # headers parsed, body still arriving
        self._body_length = 0
        self.failed: HttpError | None = None  # a malformed request after good ones

    @property
    def in_progress(self) -> bool:
        """Part of a request has arrived (so a timeout now deserves a 408)."""
        return self._head is not None or bool(self._buf.strip(b"\r\n"))

    def feed(self, data: bytes) -> list[Request]:
        """The requests completed by ``data``. A malformed one raises HttpError, unless
        requests before it were completed by the same bytes: those are returned (they
        deserve their answers) and the error is kept in ``failed``, for the caller to
        answer after them; the stream is then over, and the next feed raises it."""
        if self.failed is not None:
            raise self.failed
        self._buf += data
        done: list[Request] = []
        while True:
            try:
                request = self._next()
            except HttpError as exc:
                if not done:
                    raise
                self.failed = exc
                return done
            if request is None:
                return done
            done.append(request)

    def _next(self) -> Request | None:
        if self._head is None:
            # RFC 9112 2.2: ignore empty lines before a request line.
            while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
                del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
            end, sep = _find_head_end(self._buf)
            if end < 0:
                self._check_partial_head()
                return None
            head = bytes(self._buf[:end])
            del self._buf[: end + sep]
            if len(head) > self.limits.header_section:
                raise HttpError(431, "header section too large")
            self._head, self._body_length = self._parse_head(head)
        if len(self._buf) < self._body_length:
            return None
        request = self._head
        request.body = bytes(self._buf[: self._body_length])
        del self._buf[: self._body_length]
        self._head, self._body_length = None, 0
        return request

    def _check_partial_head(self) -> None:
        first_line_end = self._buf.find(b"\n")
        if first_line_end < 0 and len(self._buf) > self.limits.request_line:
            raise HttpError(414, "request line too long")
        if len(self._buf) > self.limits.header_section:
            raise HttpError(431, "header section too large")

    def _parse_head(self, head: bytes) -> tuple[Request, int]:
        lines = head.split(b"\n")
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        request_line = lines[0]
        if len(request_line) > self.limits.request_line:
            raise HttpError(414, "request line too long")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not all(parts):
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if not TOKEN.match(method):
            raise HttpError(400, "malformed method")
        if not VERSION.match(version):
            if version.startswith(b"HTTP/"):
                raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served")
            raise HttpError(400, "malformed HTTP version")
        if not target.startswith(b"/") or any(b < 0x21 or b == 0x7F for b in target):
            raise HttpError(400, "malformed request target")
        request = Request(method.decode("ascii"), target.decode("latin-1"), version.decode())
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise HttpError(400, "obsolete line folding is not accepted")
            field_ = header_field(line)
            if field_ is None:
                raise HttpError(400, "malformed header line")
            request.headers.append(field_)
        return request, self._body_length_of(request)

    def _body_length_of(self, request: Request) -> int:
        if request.header("transfer-encoding") is not None:
            if request.header("content-length") is not None:
                raise HttpError(400, "both Transfer-Encoding and Content-Length")
            raise HttpError(501, "Transfer-Encoding is not supported; send Content-Length")
        if request.version == "HTTP/1.1" and request.header("host") is None:
            raise HttpError(400, "HTTP/1.1 requests must carry a Host header")
        values = {v.strip() for k, v in request.headers if k.lower() == "content-length"}
        if not values:
            return 0
        if len(values) > 1:
            raise HttpError(400, "conflicting Content-Length headers")
        raw = values.pop()
        if not raw.isdigit() or not raw.isascii():
            raise HttpError(400, "malformed Content-Length")
        length = int(raw)
        if length > self.limits.body:
            raise HttpError(413, f"body over {self.limits.body} bytes")
        return length


def header_field(line: bytes) -> tuple[str, str] | None:
    """``Name: value`` (line end removed) as (name, value); None if it is not one."""
    name, colon, value = line.partition(b":")
    if not colon or not TOKEN.match(name):
        return None
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


def _find_head_end(buf: bytes | bytearray) -> tuple[int, int]:
    """Index of the blank line ending the header section and its separator length."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, 2
    return crlf, 4 if crlf >= 0 else 0


def render_response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "text/plain; charset=utf-8",
    keep_alive: bool = True,
    extra_headers: list[tuple[str, str]] | None = None,
    head_only: bool = False,
) -> bytes:
    """A complete response, framed by Content-Length."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    if status != 204:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    lines.extend(f"{k}: {v}" for k, v in extra_headers or [])
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only or status == 204 else head + body


# --- responses, as a client received them ------------------------------------------


class WireError(Exception):
    """The bytes are not a sequence of complete, Content-Length framed responses."""


@dataclass(frozen=True)
class RawResponse:
    """One response exactly as it arrived: line ends kept, so they can be shown and checked."""

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
        end, sep = _find_head_end(data[pos:])
        if end < 0:
            raise WireError(f"no blank line (\\r\\n\\r\\n) after byte {pos}: head incomplete")
        end += pos
        line_end = 2 if data[end : end + 2] == b"\r\n" else 1
        head = data[pos : end + line_end]
        lines = [line.rstrip(b"\r") for line in data[pos:end].split(b"\n")]
        try:
            version, code, *_ = lines[0].decode("latin-1").split(" ", 2)
            status = int(code)
            if not VERSION.match(version.encode()):
                raise ValueError(version)
        except ValueError:
            raise WireError(f"not a status line: {lines[0]!r}") from None
        headers = {}
        for line in lines[1:]:
            parsed = header_field(line)
            if parsed is None:
                raise WireError(f"not a header line: {line!r}")
            headers[parsed[0].lower()] = parsed[1]
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise WireError(f"Content-Length is not a number: {length_text!r}")
        length = int(length_text)
        body_start = end + sep
        if len(data) < body_start + length:
            raise WireError(
                f"Content-Length {length} but only {len(data) - body_start} body bytes arrived"
            )
        body = data[body_start : body_start + length]
        responses.append(RawResponse(head, data[end:body_start], body, status, headers))
        pos = body_start + length
    return responses
