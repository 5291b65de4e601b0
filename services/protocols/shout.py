"""Sans-IO uppercasing ("shouting") of a byte stream or a datagram.

Defined behaviour for bytes that cannot be uppercased: every byte that is not
part of a valid UTF-8 sequence is passed through unchanged, in place. Nothing is
dropped and nothing is replaced, so ``len(input)`` bytes of garbage produce the
same garbage back. Valid text is uppercased with ``str.upper`` (so ``ß`` becomes
``SS``: the reply can be longer than the request).

The stream shouter keeps an incomplete multi-byte character from the end of one
read until the next read completes it, so a character split across TCP segments
is still uppercased correctly.
"""

from __future__ import annotations

import codecs

# surrogateescape maps each undecodable byte to a lone surrogate that upper()
# leaves alone and encode() turns back into the very same byte.
_ERRORS = "surrogateescape"


def shout(data: bytes) -> bytes:
    """Uppercase one complete message (a UDP datagram)."""
    return data.decode("utf-8", _ERRORS).upper().encode("utf-8", _ERRORS)


class StreamShouter:
    """Uppercases a byte stream delivered in arbitrary pieces."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(_ERRORS)

    def feed(self, data: bytes) -> bytes:
        """Take the next piece of the stream; return what can be answered now."""
        text = self._decoder.decode(data, final=False)
        return text.upper().encode("utf-8", _ERRORS)

    def finish(self) -> bytes:
        """The peer finished sending: flush a dangling partial character as-is."""
        text = self._decoder.decode(b"", final=True)
        return text.upper().encode("utf-8", _ERRORS)

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a multi-byte character."""
        buffered, _ = self._decoder.getstate()
        return len(buffered)
