"""One client connection: the socket, the bytes received but not yet consumed, and its deadlines.

The socket stays in blocking mode with kernel timeouts (set by the worker: SO_RCVTIMEO = the keep-alive
grace, SO_SNDTIMEO = the send timeout), so the common receive and send are each one system call; a
Python-level socket timeout would add a poll() before every call. `recv_now` uses MSG_DONTWAIT for the
rare "only if ready" read.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from .errors import ClientDisconnected, RequestTimeout

RECV_SIZE = 65536


def timeval(seconds: float) -> bytes:
    """A struct timeval for SO_RCVTIMEO / SO_SNDTIMEO."""
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


class Connection:
    """A client connection as the protocol loop sees it."""

    __slots__ = (
        "body_timeout",
        "buf",
        "closed",
        "fd",
        "head_started",
        "idle_since",
        "linger_left",
        "linger_until",
        "more",
        "peer",
        "pending",
        "record",
        "registered",
        "requests",
        "sent",
        "server_addr",
        "sock",
        "tls",
        "trusted",
    )

    def __init__(self, sock: socket.socket, peer, server_addr, body_timeout: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()  # kept after close: the worker's tables are keyed by it
        self.peer = peer
        self.server_addr = server_addr
        self.buf = bytearray()
        self.head_started: float | None = None  # when the first byte of the pending head arrived
        self.idle_since = time.monotonic()
        self.requests = 0
        self.sent = 0  # bytes sent on this connection (the access log takes differences)
        self.record = None  # the access log's record of the request in progress, when logging
        self.closed = False
        self.linger_until: float | None = None  # lingering after an error: closed by the worker's sweep
        self.linger_left = 0
        self.more = False  # the last read filled the buffer: bytes may be left that epoll will not report
        self.registered = False  # in the worker's epoll set (parked before)
        self.body_timeout = body_timeout
        self.tls = False
        self.pending = 0  # preamble.py steps still to do before HTTP (PROXY header, TLS handshake)
        self.trusted = False  # the peer is a trusted proxy: X-Forwarded-* / Forwarded apply (forwarded.py)

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- reading ---------------------------------------------------------------------------------------
    def recv_now(self, flags: int = socket.MSG_DONTWAIT) -> int:
        """Append what is readable right now; -1 if nothing is, 0 on end of stream. (`flags` 0: recv_wait.)"""
        try:
            data = self.sock.recv(RECV_SIZE, flags)
        except BlockingIOError:  # nothing readable, or SO_RCVTIMEO passed
            self.more = False
            return -1
        except (ConnectionResetError, BrokenPipeError):
            return 0
        self.buf += data
        n = len(data)
        self.more = n == RECV_SIZE
        return n

    def recv_wait(self) -> int:
        """Append what arrives within the keep-alive grace; -1 on timeout, 0 on end of stream."""
        return self.recv_now(0)

    def fill_body(self) -> None:
        """Append more request body bytes; the peer going away or stalling is an error here."""
        deadline = time.monotonic() + self.body_timeout
        while True:
            n = self.recv_wait()
            if n > 0:
                return
            if n == 0:
                raise ClientDisconnected("client closed the connection during the body")
            if time.monotonic() >= deadline:
                raise RequestTimeout("timed out reading the request body")

    # -- writing ---------------------------------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`; the kernel's send timeout bounds a client that does not read."""
        try:
            self.sock.sendall(data)
        except BlockingIOError:
            raise TimeoutError("timed out sending the response") from None
        except (BrokenPipeError, ConnectionResetError) as exc:  # told apart from an app's own errors
            raise ClientDisconnected(f"client went away: {exc}") from None
        self.sent += len(data)

    def sendfile(self, fileobj, offset: int, count: int) -> None:
        """Send `count` bytes of a file from `offset` with os.sendfile, never reading it into memory."""
        self.sent += count
        if self.tls:
            self.sock.sendfile(fileobj, offset, count)  # ssl sockets fall back to read/send inside
            return
        fd = fileobj.fileno()
        out = self.sock.fileno()
        while count > 0:
            try:
                sent = os.sendfile(out, fd, offset, min(count, 1 << 30))
            except BlockingIOError:
                raise TimeoutError("timed out sending the response") from None
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise ClientDisconnected(f"client went away: {exc}") from None
            if sent == 0:
                raise ClientDisconnected("file ended before its length or peer went away")
            offset += sent
            count -= sent

    def send_now(self, data: bytes) -> None:
        """Send what fits without waiting, ignoring failure (a last word before closing)."""
        try:
            self.sock.send(data, socket.MSG_DONTWAIT)
        except (OSError, ValueError):
            pass

    # -- closing ---------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def linger_close(self, linger: float = 1.0, max_bytes: int = 1 << 16) -> None:
        """Shut down writing; close once the client has closed its end, sent `max_bytes` more, or `linger`
        seconds have passed.

        Closing with unread bytes makes the kernel send RST, which can destroy the error response before
        the client reads it (RFC 9112 §9.6). What is readable now is dropped here; a client that has not
        finished leaves the connection open (`linger_until` set) for the worker's main thread to finish
        with `linger_step`, so no pool thread waits on it.
        """
        if self.closed:
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.setblocking(False)
        except OSError:
            self.close()
            return
        now = time.monotonic()
        self.linger_until = now + linger
        self.linger_left = max_bytes
        self.linger_step(now)

    def linger_step(self, now: float) -> bool:
        """Drop what the client sent since the last step; close at its end of stream, past the byte cap or
        past the deadline. True once closed."""
        try:
            while self.linger_left > 0:
                chunk = self.sock.recv(RECV_SIZE)
                if not chunk:
                    break
                self.linger_left -= len(chunk)
        except BlockingIOError:  # nothing more for now
            if self.linger_until is not None and now < self.linger_until:
                return False
        except OSError:
            pass
        self.close()
        return True
