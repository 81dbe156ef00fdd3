"""Sans-I/O decoder for the chunked transfer coding (RFC 9112 §7.1), strict about CRLF and sizes."""

from __future__ import annotations

import re

from .errors import BadRequest, ContentTooLarge, HeaderFieldsTooLarge
from .parser import DEFAULT_LIMITS, FIELD_RE, Limits

# chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
_SIZE_RE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"((?:[ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|\"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*\"))?)*)"
)

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
        """Consume from `buf`; return body bytes (b"" once the body is complete) or None if more input is needed."""
        while True:
            state = self.state
            if state == _DATA:
                if not buf:
                    return None
                n = min(self.remaining, len(buf), max_bytes)
                data = bytes(buf[:n])
                del buf[:n]
                self.remaining -= n
                if self.remaining == 0:
                    self.state = _DATA_END
                return data
            if state == _DONE:
                return b""
            if state == _DATA_END:
                # Exactly CRLF must follow the data: judge each byte as it comes rather than wait for a line.
                if buf[:2] == b"\r\n":
                    del buf[:2]
                    self.state = _SIZE
                    continue
                if buf == b"\r" or not buf:
                    return None
                raise BadRequest("chunk data not followed by CRLF")
            line = self._take_line(buf)
            if line is None:
                return None
            if state == _SIZE:
                self._start_chunk(line)
            else:
                self._trailer_line(line)

    def _take_line(self, buf: bytearray) -> bytes | None:
        limit = self.limits.max_chunk_line if self.state != _TRAILER else self.limits.max_trailer_bytes
        end = buf.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if len(buf) > limit + 1:
                if self.state == _TRAILER:
                    raise HeaderFieldsTooLarge("trailer section too large")
                raise BadRequest("chunk line too long")
            if b"\n" in buf:
                raise BadRequest("bare LF in chunked body")
            return None
        line = bytes(buf[:end])
        del buf[: end + 2]
        if b"\r" in line or b"\n" in line:
            raise BadRequest("bare CR or LF in chunked body")
        return line

    def _start_chunk(self, line: bytes) -> None:
        match = _SIZE_RE.fullmatch(line)
        if match is None:
            raise BadRequest("malformed chunk size line")
        size = int(match.group(1), 16)
        self.total += size
        if self.total > self.limits.max_body:
            raise ContentTooLarge("request body too large")
        if size == 0:
            self.state = _TRAILER
        else:
            self.remaining = size
            self.state = _DATA

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self.state = _DONE
            return
        self.trailer_bytes += len(line) + 2
        if self.trailer_bytes > self.limits.max_trailer_bytes:
            raise HeaderFieldsTooLarge("trailer section too large")
        match = FIELD_RE.fullmatch(line)
        if match is None:
            raise BadRequest("malformed trailer field")
        self.trailers.append((match.group(1).decode("ascii").lower(), match.group(2).decode("latin-1")))
