"""TLS with the ssl module: the server's SSLContext from the settings, and the connection that speaks it.

Every worker builds its context when it starts, reading the certificate files then; a HUP starts new
workers, so new connections get the certificate on disk while the old workers finish theirs on the old one.

A TLS socket gets Python-level timeouts where a plain one has kernel ones (SO_RCVTIMEO): CPython's ssl
module retries a read, write or handshake that OpenSSL reports as "want read/write" for as long as the
socket is in blocking mode, so a kernel timeout never ends it and a silent client would pin the thread.
With a Python timeout the descriptor is non-blocking and the ssl module polls with the timeout instead:
reads and the handshake wait the keep-alive grace (then the connection is parked, holding no thread), writes
the send timeout, and "read only what is ready" uses timeout 0. The poll costs nothing when bytes are
ready; switching timeouts is one ioctl, done only when the kind of operation changes.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl

from .connection import RECV_SIZE, Connection
from .errors import ClientDisconnected
from .writer import error_response

log = logging.getLogger("ehttpd.error")

CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
SEND_SLICE = 256 * 1024  # the send timeout bounds each slice, so it is a limit on progress, not on size
HANDSHAKE = 0x16  # the first byte of a TLS record carrying a ClientHello

READY, WAIT, CLOSED = 0, 1, 2  # outcomes of `TLSConnection.start`


def server_context(settings) -> ssl.SSLContext | None:
    """The SSLContext of `settings` (None without a certfile), reading the files now."""
    if not settings.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[settings.ssl_min_version]
    context.load_cert_chain(settings.certfile, settings.keyfile)
    if settings.ca_certs:
        context.load_verify_locations(settings.ca_certs)
    context.verify_mode = CERT_REQS[settings.cert_reqs]
    context.options |= ssl.OP_NO_RENEGOTIATION  # TLS 1.2 renegotiation: a client could make us work for it
    context.set_alpn_protocols(["http/1.1"])
    return context


def settings_error(settings) -> str | None:
    """Why the TLS settings cannot work (one line), or None; loads the files to find out."""
    if not settings.certfile:
        given = [name for name in ("keyfile", "ca_certs") if getattr(settings, name)]
        given += ["cert_reqs"] if settings.cert_reqs != "none" else []
        if not given:
            return None
        return f"{', '.join(given)} need{'s' if len(given) == 1 else ''} certfile (TLS is off without it)"
    if settings.cert_reqs != "none" and not settings.ca_certs:
        return f"cert_reqs {settings.cert_reqs} needs ca_certs, the CAs to verify client certificates with"
    try:
        server_context(settings)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        files = ", ".join(repr(f) for f in (settings.certfile, settings.keyfile, settings.ca_certs) if f)
        return f"cannot load the TLS files {files}: {_reason(exc)}"
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def describe_peer(peer) -> str:
    if type(peer) is tuple:
        return f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
    return peer or "a UNIX socket"


class TLSConnection(Connection):
    """A connection on a TLS listener: plain until `start` has seen a ClientHello and done the handshake."""

    __slots__ = ("grace", "send_timeout", "timeout")

    def __init__(
        self, sock: socket.socket, peer, server_addr, body_timeout: float, grace: float, send_timeout: float
    ) -> None:
        super().__init__(sock, peer, server_addr, body_timeout)
        self.more = True  # OpenSSL may hold decrypted bytes epoll cannot see: always read before parking
        self.grace = grace
        self.send_timeout = send_timeout
        self.timeout: float | None = None  # the socket's Python timeout; None: blocking, kernel timeouts

    def _use_timeout(self, timeout: float) -> None:
        if self.timeout != timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    # -- the handshake ----------------------------------------------------------------------------------
    def start(self, context: ssl.SSLContext, linger: float) -> int:
        """Advance the handshake: READY when done, WAIT when the client is quiet (park), CLOSED on failure."""
        if not isinstance(self.sock, ssl.SSLSocket):
            first = bytes(self.buf[:8])  # bytes a PROXY protocol check took that were no PROXY header
            if not first:
                try:  # the raw socket still has the kernel timeout of the keep-alive grace
                    first = self.sock.recv(8, socket.MSG_PEEK)
                except BlockingIOError:
                    return WAIT
                except OSError:
                    first = b""
            if not first:
                self.close()
                return CLOSED
            if first[0] != HANDSHAKE:
                self._not_tls(first, linger)
                return CLOSED
            self.sock = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.timeout = None
        self._use_timeout(self.grace)
        try:
            self.sock.do_handshake()
        except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return WAIT
        except (OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", describe_peer(self.peer), _reason(exc))
            self.close()
            return CLOSED
        self.tls = True
        return READY

    def _not_tls(self, first: bytes, linger: float) -> None:
        """Plain HTTP (or anything but TLS) on a TLS port: one log line, a plain-text 400 to HTTP, close."""
        if first[:1].isalpha() and first[:1].isupper():
            log.warning("plain HTTP request on a TLS port from %s; answered 400", describe_peer(self.peer))
            try:
                self.sock.sendall(error_response(400, "The plain HTTP request was sent to HTTPS port"))
            except OSError:
                self.close()
                return
            self.linger_close(linger)
        else:
            log.warning("not a TLS handshake on a TLS port from %s; closed", describe_peer(self.peer))
            self.close()

    # -- reading ----------------------------------------------------------------------------------------
    def recv_now(self) -> int:
        self._use_timeout(0.0)
        return self._recv()

    def recv_wait(self) -> int:
        self._use_timeout(self.grace)
        return self._recv()

    def _recv(self) -> int:
        sock = self.sock
        while True:
            try:
                data = sock.recv(RECV_SIZE)
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                if sock.pending():
                    continue  # never park with decrypted bytes held inside OpenSSL: epoll cannot see them
                return -1
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):  # close_notify, EOF, broken record
                return 0
            self.buf += data
            return len(data)

    # -- writing ----------------------------------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        self._use_timeout(self.send_timeout)
        try:
            if len(data) <= SEND_SLICE:
                self.sock.sendall(data)
            else:
                with memoryview(data) as view:
                    for start in range(0, len(view), SEND_SLICE):
                        self.sock.sendall(view[start : start + SEND_SLICE])
        except (TimeoutError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            raise TimeoutError("timed out sending the response") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ClientDisconnected(f"client went away: {exc}") from None
        self.sent += len(data)  # the access log's byte counts

    def sendfile(self, fileobj, offset: int, count: int) -> None:
        """os.sendfile cannot encrypt: read the file in slices (never all of it) and send them."""
        fd = fileobj.fileno()
        while count > 0:
            chunk = os.pread(fd, min(count, SEND_SLICE), offset)
            if not chunk:
                raise ClientDisconnected("file ended before its length")
            self.send(chunk)
            offset += len(chunk)
            count -= len(chunk)

    def send_now(self, data: bytes) -> None:
        if not self.tls:
            super().send_now(data)
            return
        try:
            self._use_timeout(0.0)
            self.sock.send(data)
        except (OSError, ValueError):
            pass

    # -- closing ----------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.tls and not self.closed:
            self._close_notify()
        super().close()

    def linger_close(self, linger: float = 1.0, max_bytes: int = 1 << 16) -> None:
        if self.tls and not self.closed:
            self._close_notify()
        super().linger_close(linger, max_bytes)

    def _close_notify(self) -> None:
        """Send TLS close_notify without waiting for the client's (nginx does the same), so a client can
        tell our end of the stream from a truncation."""
        self.tls = False
        try:
            self._use_timeout(0.0)
            self.sock.unwrap()
        except (OSError, ValueError):
            pass
