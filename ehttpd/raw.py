"""Raw connection mode: the handler gets the connection's reader and writer and says whether to keep it.

As in Rust ehttpd, `handler(stream) -> bool` is called once per exchange; True keeps the connection and the
handler is called again when more bytes arrive (the connection is parked in between, holding no thread).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from .config import Settings
from .connection import Connection
from .errors import ClientDisconnected
from .protocol import CLOSE, MORE, ServerState, await_bytes

log = logging.getLogger("ehttpd.error")


def raw(handler: Callable[[RawStream], bool]) -> Callable[[RawStream], bool]:
    """Mark `handler` as a raw connection handler."""
    handler.__ehttpd_interface__ = "raw"  # type: ignore[attr-defined]
    return handler


class RawStream:
    """Blocking reader and writer over a connection, sharing its receive buffer."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def peer(self):
        return self.conn.peer

    def read(self, size: int = 65536) -> bytes:
        """Up to `size` bytes, waiting for at least one; b"" at the end of the stream."""
        conn = self.conn
        if not conn.buf:
            try:
                conn.fill_body()
            except ClientDisconnected:
                return b""
        data = bytes(conn.buf[:size])
        del conn.buf[:size]
        return data

    def readline(self, limit: int = 65536) -> bytes:
        """One line including b"\\n" (at most `limit` bytes); b"" at the end of the stream."""
        conn = self.conn
        while True:
            nl = conn.buf.find(b"\n", 0, limit)
            if nl >= 0 or len(conn.buf) >= limit:
                end = nl + 1 if nl >= 0 else limit
                line = bytes(conn.buf[:end])
                del conn.buf[:end]
                return line
            try:
                conn.fill_body()
            except ClientDisconnected:
                line = bytes(conn.buf)
                conn.buf.clear()
                return line

    def write(self, data: bytes) -> None:
        self.conn.send(data)

    def sendfile(self, fileobj, offset: int = 0, count: int | None = None) -> None:
        if count is None:
            count = os.fstat(fileobj.fileno()).st_size - offset
        self.conn.sendfile(fileobj, offset, count)


class RawProtocol:
    """Drives a raw handler on a connection, parking it between exchanges."""

    def __init__(self, handler: Callable[[RawStream], bool], settings: Settings, state: ServerState) -> None:
        self.handler = handler
        self.settings = settings
        self.state = state

    def serve(self, conn: Connection) -> bool:
        stream = RawStream(conn)
        while True:
            if not conn.buf:
                step = await_bytes(conn, self.state, self.settings)
                if step == CLOSE:
                    conn.close()
                    return False
                if step != MORE:
                    return True
            try:
                keep = self.handler(stream)
            except Exception:
                log.exception("raw handler failed")
                keep = False
            if not keep:
                conn.close()
                return False
