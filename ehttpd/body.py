"""Request body streams: Content-Length or chunked, read lazily from the connection.

`100 Continue` goes out on the first read, so a client that waits for it sends the body only when the
handler really wants it (RFC 9110 §10.1.1), and never once the final response has started (it would land
inside that response): a read then waits for what the client sends on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from .chunked import ChunkedDecoder
from .connection import Connection
from .errors import ContentTooLarge
from .parser import Limits

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
WITHHELD = 2  # _expect_continue once the final response started: no 100 any more, and no drain
READ_CHUNK = 65536


class Body:
    """A readable binary stream over a request body; reads past the end return b""."""

    __slots__ = ("_conn", "_eof", "_expect_continue", "_pending", "broken", "bytes_read")

    def __init__(self, conn: Connection | None, expect_continue: bool = False) -> None:
        self._conn = conn
        self._pending = b""  # bytes taken from the wire but not yet handed out (readline look-ahead)
        self._expect_continue = expect_continue
        self._eof = conn is None
        self.broken = False  # a read failed (timeout, bad framing, peer gone): never drained or reused
        self.bytes_read = 0

    # Subclasses supply _read_raw(max) -> bytes, b"" at the end of the body.
    def _read_raw(self, limit: int) -> bytes:
        return b""

    @property
    def complete(self) -> bool:
        """True once every byte of the body has been taken off the wire."""
        return self._eof

    def _next(self, limit: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:limit], self._pending[limit:]
            return data
        if self._eof:
            return b""
        if self._expect_continue == 1:  # True, not WITHHELD
            self._expect_continue = False
            self._conn.send(CONTINUE)
        try:
            data = self._read_raw(limit)
        except BaseException:
            self.broken = True  # even if the handler catches this and answers, the stream is done
            raise
        if not data:
            self._eof = True
        self.bytes_read += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all that is left when size is None or negative)."""
        if size is None or size < 0:
            parts = []
            while chunk := self._next(READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        parts = []
        while size > 0:
            chunk = self._next(size)
            if not chunk:
                break
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def read_all(self, limit: int) -> bytes:
        """The whole body, refusing (413) one larger than `limit` bytes."""
        data = self.read(limit + 1)
        if len(data) > limit:
            raise ContentTooLarge("request body larger than the handler accepts")
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """One line including its b"\\n", at most `size` bytes."""
        limit = size if size is not None and size >= 0 else None
        line = b""
        while limit is None or len(line) < limit:
            chunk = self._next(READ_CHUNK if limit is None else limit - len(line))
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                line += chunk[: nl + 1]
                self._pending = chunk[nl + 1 :] + self._pending
                break
            line += chunk
        return line

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def response_started(self) -> None:
        """The final response's head goes out now: a 100 Continue may no longer be sent."""
        if self._expect_continue:
            self._expect_continue = WITHHELD

    def drain(self, max_bytes: int, seconds: float) -> bool:
        """Read and drop what is left, up to `max_bytes` and for about `seconds` (each wait for bytes
        bounded by the connection's body timeout); True if the body was read to its end."""
        self._expect_continue = False  # never invite a body only to throw it away
        deadline = time.monotonic() + seconds
        while max_bytes > 0 and time.monotonic() < deadline:
            chunk = self._next(min(READ_CHUNK, max_bytes))
            if not chunk:
                return True
            max_bytes -= len(chunk)
        return self._eof


class LengthBody(Body):
    """A body of exactly Content-Length bytes."""

    __slots__ = ("remaining",)

    def __init__(self, conn: Connection, length: int, expect_continue: bool) -> None:
        super().__init__(conn, expect_continue)
        self.remaining = length
        if length == 0:
            self._eof = True

    def _read_raw(self, limit: int) -> bytes:
        if self.remaining <= 0:
            return b""
        conn = self._conn
        buf = conn.buf
        if not buf:
            conn.fill_body()
        n = min(limit, self.remaining, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        self.remaining -= n
        return data

    def drain(self, max_bytes: int, seconds: float) -> bool:
        if self.remaining > max_bytes or (self._expect_continue and self.remaining):
            # Draining would cost more than closing, or the client waits for 100 before sending it.
            self._expect_continue = False
            return self.remaining == 0 and not self._pending
        return super().drain(max_bytes, seconds)


class ChunkedBody(Body):
    """A chunked body, decoded; trailer fields are in `trailers` once it has been read to the end."""

    __slots__ = ("decoder",)

    def __init__(self, conn: Connection, limits: Limits, expect_continue: bool) -> None:
        super().__init__(conn, expect_continue)
        self.decoder = ChunkedDecoder(limits)

    @property
    def trailers(self) -> list[tuple[str, str]]:
        return self.decoder.trailers

    def _read_raw(self, limit: int) -> bytes:
        conn = self._conn
        while True:
            data = self.decoder.decode(conn.buf, limit)
            if data is not None:
                return data
            conn.fill_body()

    def drain(self, max_bytes: int, seconds: float) -> bool:
        if self._expect_continue:
            self._expect_continue = False
            return False
        return super().drain(max_bytes, seconds)


EMPTY_BODY = Body(None)
