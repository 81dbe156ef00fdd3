"""Writing a response: framing (Content-Length, chunked, close-delimited), HEAD, Date and Server."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

from .connection import Connection
from .errors import REASONS
from .response import FileBody, Response

log = logging.getLogger("ehttpd.error")

# Framing is ours to decide; an application's values for these would desync the stream.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive"))
_BODYLESS = frozenset((204, 304))

_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The current IMF-fixdate, formatted at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class ResponseWriter:
    """Serialises responses onto a connection; one per protocol instance, stateless between calls."""

    __slots__ = ("server_header",)

    def __init__(self, server_header: str) -> None:
        self.server_header = server_header

    def write(self, conn: Connection, resp: Response, method: str, version: str, keep: bool) -> bool:
        """Send `resp`; return whether the connection can carry another request."""
        status = resp.status
        body = resp.body
        bodyless = status < 200 or status in _BODYLESS
        length = None if bodyless else resp.content_length
        parts = [f"HTTP/1.1 {status} {resp.reason}\r\n"]
        has_date = has_server = False
        for name, value in resp.headers:
            lower = name.lower()
            if lower in _FRAMING:
                if lower == "connection" and "close" in value.lower():
                    keep = False
                continue
            if lower == "date":
                has_date = True
            elif lower == "server":
                has_server = True
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
                raise ValueError(f"invalid header field {name!r}")
            parts.append(f"{name}: {value}\r\n")
        if not has_date:
            parts.append(f"Date: {http_date()}\r\n")
        if not has_server and self.server_header:
            parts.append(f"Server: {self.server_header}\r\n")
        chunked = False
        if not bodyless:
            if length is not None:
                parts.append(f"Content-Length: {length}\r\n")
            elif version == "HTTP/1.1":
                chunked = True
                parts.append("Transfer-Encoding: chunked\r\n")
            elif method != "HEAD":
                keep = False  # close-delimited body on HTTP/1.0
        if not keep:
            parts.append("Connection: close\r\n")
        elif version == "HTTP/1.0":
            parts.append("Connection: keep-alive\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("latin-1")
        if bodyless or method == "HEAD":
            _close_body(body)
            conn.send(head)
            return keep
        if isinstance(body, (bytes, bytearray)):
            conn.send(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.send(body)
            return keep
        if isinstance(body, FileBody):
            try:
                conn.send(head)
                conn.sendfile(body.file, body.offset, body.length)
            finally:
                body.close()
            return keep
        conn.send(head)
        return self._write_iterable(conn, body, length, chunked) and keep

    def _write_iterable(self, conn: Connection, body, length: int | None, chunked: bool) -> bool:
        """Stream an iterable body; False when what it produced broke the declared framing."""
        sent = 0
        try:
            for chunk in body:
                if isinstance(chunk, FileBody):
                    try:
                        conn.sendfile(chunk.file, chunk.offset, chunk.length)
                    finally:
                        chunk.close()
                    sent += chunk.length
                    continue
                if not chunk:
                    continue
                if chunked:
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    if length is not None and sent + len(chunk) > length:
                        conn.send(memoryview(chunk)[: length - sent])
                        log.error("response body longer than its Content-Length %d; closing", length)
                        return False
                    conn.send(chunk)
                sent += len(chunk)
            if chunked:
                conn.send(b"0\r\n\r\n")
        finally:
            _close_body(body)
        if length is not None and sent != length:
            log.error("response body of %d bytes shorter than its Content-Length %d; closing", sent, length)
            return False
        return True


def _close_body(body) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def error_response(status: int, reason: str) -> bytes:
    """A complete, self-contained error response that closes the connection."""
    body = f"{status} {REASONS.get(status, 'Error')}: {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        f"Date: {http_date()}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body
