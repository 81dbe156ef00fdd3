"""Sans-I/O decoder for the chunked transfer coding (RFC 9112 §7.1), strict about CRLF and sizes."""

from __future__ import annotations

import re

from .errors import BadRequest, ContentTooLarge, HeaderFieldsTooLarge
from .parser import DEFAULT_LIMITS, FIELD_RE, Limits

# chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
_SIZE_RE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"((?:[ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    rb"|\"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*\"))?)*)"
)
_HEXDIGITS = b"0123456789ABCDEFabcdef"

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Feed it the connection's buffer; it consumes what it can and hands back decoded body bytes."""

    __slots__ = ("limits", "remaining", "state", "total", "trailer_bytes", "trailers")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.state = _SIZE
        self.remaining = 0
        self.total = 0
        self.trailers: list[tuple[str, str]] = []
        self.trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self.state == _DONE

    def decode(self, buf: bytearray, max_bytes: int = 1 << 20) -> bytes | None:
        """Consume from `buf`; return body bytes, b"" once the body is complete, None if more input is needed.

        One call decodes as many chunks as `buf` holds, up to `max_bytes` of data; the bytes after the body
        (a pipelined request) stay in `buf`.
        """
        parts: list[bytes] = []
        room = max_bytes
        state = self.state
        try:
            while True:
                if state == _DATA:
                    if not buf or not room:
                        break
                    n = min(self.remaining, len(buf), room)
                    parts.append(bytes(buf[:n]))
                    del buf[:n]
                    room -= n
                    self.remaining -= n
                    if self.remaining == 0:
                        state = _DATA_END
                elif state == _DATA_END:
                    # Exactly CRLF must follow the data: judge each byte as it comes, not once a line is in.
                    if buf[:2] == b"\r\n":
                        del buf[:2]
                        state = _SIZE
                    elif buf == b"\r" or not buf:
                        break
                    else:
                        raise BadRequest("chunk data not followed by CRLF")
                elif state == _DONE:
                    break
                else:
                    line = self._take_line(buf, state)
                    if line is None:
                        break
                    state = self._start_chunk(line) if state == _SIZE else self._trailer_line(line)
        finally:
            self.state = state
        if parts:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        return b"" if state == _DONE else None

    def _take_line(self, buf: bytearray, state: int) -> bytes | None:
        limit = self.limits.max_chunk_line if state == _SIZE else self.limits.max_trailer_bytes
        end = buf.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if len(buf) > limit + 1:
                if state == _TRAILER:
                    raise HeaderFieldsTooLarge("trailer section too large")
                raise BadRequest("chunk line too long")
            if b"\n" in buf:
                raise BadRequest("bare LF in chunked body")
            return None
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line  # a bare CR or LF in it fails the size or field pattern

    def _start_chunk(self, line: bytes) -> int:
        """Take a chunk-size line; return the next state."""
        if 0 < len(line) <= 16 and not line.translate(None, _HEXDIGITS):
            size = int(line, 16)  # the common case: a bare chunk-size
        else:
            match = _SIZE_RE.fullmatch(line)
            if match is None:
                raise BadRequest(_line_fault(line, "malformed chunk size line"))
            size = int(match.group(1), 16)
        self.total += size
        if self.total > self.limits.max_body:
            raise ContentTooLarge("request body too large")
        if size == 0:
            return _TRAILER
        self.remaining = size
        return _DATA

    def _trailer_line(self, line: bytes) -> int:
        """Take a trailer field line, or the empty line that ends the body; return the next state."""
        if not line:
            return _DONE
        self.trailer_bytes += len(line) + 2
        if self.trailer_bytes > self.limits.max_trailer_bytes:
            raise HeaderFieldsTooLarge("trailer section too large")
        match = FIELD_RE.fullmatch(line)
        if match is None:
            raise BadRequest(_line_fault(line, "malformed trailer field"))
        self.trailers.append((match.group(1).decode("ascii").lower(), match.group(2).decode("latin-1")))
        return _TRAILER


def _line_fault(line: bytes, reason: str) -> str:
    return "bare CR or LF in chunked body" if b"\r" in line or b"\n" in line else reason
