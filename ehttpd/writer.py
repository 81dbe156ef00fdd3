"""Writing a response: framing (Content-Length, chunked, close-delimited), HEAD, Date and Server."""

from __future__ import annotations

import functools
import logging
import re
import time
from email.utils import formatdate

from .connection import Connection
from .errors import REASONS
from .parser import TOKEN_RE
from .response import FileBody, Response

log = logging.getLogger("ehttpd.error")

# Framing is ours to decide; an application's values for these would desync the stream.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive"))
_SPECIAL = _FRAMING | {"date", "server"}
_BODYLESS = frozenset((204, 304))
# A reason phrase and field values take HTAB, SP, VCHAR and obs-text only (RFC 9110 §5.5, RFC 9112 §4).
BAD_TEXT_RE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_valid_fields: set[tuple[str, str]] = set()  # (name, value) pairs already checked, at most _CHECKED_MAX
_CHECKED_MAX = 1024

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

    __slots__ = ("_stamp", "server_header")

    def __init__(self, server_header: str) -> None:
        self.server_header = server_header
        self._stamp: tuple[int, str] = (0, "")

    def date_and_server(self) -> str:
        """The Date and Server field lines, formatted at most once a second."""
        now = int(time.time())
        if self._stamp[0] != now:
            server = f"Server: {self.server_header}\r\n" if self.server_header else ""
            self._stamp = (now, f"Date: {formatdate(now, usegmt=True)}\r\n{server}")
        return self._stamp[1]

    def write(self, conn: Connection, resp: Response, method: str, version: str, keep: bool) -> bool:
        """Send `resp`; return whether the connection can carry another request."""
        status = resp.status
        body = resp.body
        bodyless = status in _BODYLESS
        line = _status_line(status, resp.reason)
        if line is None:  # a 1xx cannot end a response (RFC 9110 §15.2); CR/LF would split it
            return self._invalid(conn, resp, method, version, f"status {status} {resp.reason!r}")
        parts = [line]
        stamp = True
        for name, value in resp.headers._items:
            lower = name.lower()
            if lower in _SPECIAL:
                if lower in _FRAMING:
                    if lower == "connection" and "close" in value.lower():
                        keep = False
                    continue
                stamp = False  # the application set Date or Server itself
            if (name, value) not in _valid_fields and not _valid_field(name, value):
                return self._invalid(conn, resp, method, version, f"header field {name!r}: {value!r}")
            parts.append(f"{name}: {value}\r\n")
        if stamp:
            parts.append(self.date_and_server())
        else:
            parts.append(self._missing_stamp(resp))
        chunked = False
        if bodyless:
            length = None
        elif isinstance(body, bytes):
            length = len(body)
            parts.append(f"Content-Length: {length}\r\n")
        else:
            length = resp.content_length
            if length is not None:
                parts.append(f"Content-Length: {length}\r\n")
            elif version == "HTTP/1.1":
                chunked = True
                parts.append("Transfer-Encoding: chunked\r\n")
            elif method != "HEAD":
                keep = False  # close-delimited body on HTTP/1.0
        if not keep:
            parts.append("Connection: close\r\n\r\n")
        elif version == "HTTP/1.0":
            parts.append("Connection: keep-alive\r\n\r\n")
        else:
            parts.append("\r\n")
        text = "".join(parts)
        try:
            head = text.encode("latin-1")
        except UnicodeEncodeError:
            return self._invalid(conn, resp, method, version, "a header field is not latin-1")
        if conn.record is not None:
            conn.record.response(resp, len(head))
        if bodyless or method == "HEAD":
            _close_body(body)
            conn.send(head)
            return keep
        if isinstance(body, bytes):
            if length < 65536:
                conn.send(head + body)
            else:
                conn.send(head)
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
        if isinstance(body, (bytearray, memoryview)):
            conn.send(body)
            return keep
        if isinstance(body, BodyStream):
            body.start(conn, length, chunked)  # the caller sends the pieces (WSGI's write())
            return keep
        return self._write_iterable(conn, body, length, chunked) and keep

    def _invalid(self, conn: Connection, resp: Response, method: str, version: str, why: str) -> bool:
        """A response that cannot be sent as it is (nothing of it was): answer 500 instead, and close."""
        log.error("invalid response from the application: %s; answering 500", why)
        _close_body(resp.body)
        return self.write(conn, Response.internal_error(), method, version, False)

    def _missing_stamp(self, resp: Response) -> str:
        """Date and/or Server when the application set only one of them."""
        stamp = ""
        if resp.headers.get("Date") is None:
            stamp += f"Date: {http_date()}\r\n"
        if resp.headers.get("Server") is None and self.server_header:
            stamp += f"Server: {self.server_header}\r\n"
        return stamp

    def _write_iterable(self, conn: Connection, body, length: int | None, chunked: bool) -> bool:
        """Stream an iterable body; False when what it produced broke the declared framing."""
        stream = BodyStream()
        stream.start(conn, length, chunked)
        try:
            for chunk in body:
                if not stream.send(chunk):
                    return False
            return stream.finish()
        finally:
            _close_body(body)


class BodyStream:
    """A body sent piece by piece under the framing its head announced.

    Given as a `Response` body, the writer sends the head and calls `start`; the caller then sends each
    piece and calls `finish` (WSGI's write() callable). `_write_iterable` streams iterables through it too.
    After a HEAD or bodyless response `conn` stays None: nothing may be sent.
    """

    __slots__ = ("chunked", "conn", "length", "sent")

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.length: int | None = None
        self.chunked = False
        self.sent = 0

    def start(self, conn: Connection, length: int | None, chunked: bool) -> None:
        self.conn = conn
        self.length = length
        self.chunked = chunked

    def send(self, chunk) -> bool:
        """Send one piece; False once the body outgrew its Content-Length (the part that fits was sent)."""
        conn = self.conn
        if isinstance(chunk, FileBody):
            return self._send_file(chunk)
        if not chunk:
            return True
        if type(chunk) is memoryview and chunk.nbytes != len(chunk):  # len() counts items, not bytes
            chunk = chunk.cast("B") if chunk.c_contiguous else chunk.tobytes()
        if self.chunked:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            length = self.length
            if length is not None and self.sent + len(chunk) > length:
                conn.send(memoryview(chunk)[: length - self.sent])
                self.sent = length
                log.error("response body longer than its Content-Length %d; closing", length)
                return False
            conn.send(chunk)
        self.sent += len(chunk)
        return True

    def _send_file(self, part: FileBody) -> bool:
        """Send a file part with os.sendfile, inside a chunk's framing when chunked (an empty one not at all,
        as a zero-size chunk would end the body)."""
        conn, count = self.conn, part.length
        try:
            if self.length is not None and self.sent + count > self.length:
                count = self.length - self.sent
                log.error("response body longer than its Content-Length %d; closing", self.length)
            if self.chunked and count:
                conn.send(b"%x\r\n" % count)
                conn.sendfile(part.file, part.offset, count)
                conn.send(b"\r\n")
            else:
                conn.sendfile(part.file, part.offset, count)
        finally:
            part.close()
        self.sent += count
        return count == part.length

    def finish(self) -> bool:
        """End the body; False when it fell short of its Content-Length."""
        if self.chunked:
            self.conn.send(b"0\r\n\r\n")
        length, sent = self.length, self.sent
        if length is not None and sent != length:
            log.error("response body of %d bytes shorter than its Content-Length %d; closing", sent, length)
            return False
        return True


@functools.lru_cache(maxsize=512)  # bounded: WSGI apps may send any reason phrase
def _status_line(status: int, reason: str) -> str | None:
    """The status line, or None when it cannot end a response: a status outside 200-599, or a reason
    phrase with characters other than HTAB, SP, VCHAR and obs-text."""
    if type(status) is not int or not 200 <= status <= 599 or BAD_TEXT_RE.search(reason):
        return None
    return f"HTTP/1.1 {status} {reason}\r\n"


def _valid_field(name: str, value: str) -> bool:
    """A field name is a token and its value has no control character but HTAB (no CR, LF or NUL to
    split or truncate the head); a valid pair is remembered."""
    if not TOKEN_RE.fullmatch(name) or BAD_TEXT_RE.search(value):
        return False
    if len(_valid_fields) < _CHECKED_MAX:
        _valid_fields.add((name, value))
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
