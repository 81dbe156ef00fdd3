"""What happens once per connection before its first request: the PROXY protocol header, the TLS
handshake, and whether the peer is a trusted proxy for X-Forwarded-* / Forwarded.

The worker makes each accepted connection with `Preamble.connection`. A connection that needs no step
(no TLS, no PROXY protocol) goes straight to the HTTP protocol; the others carry `pending` steps and the
worker hands them to `Preamble.serve` until those are done. Each step waits at most the keep-alive grace,
then the connection is parked like an idle one (holding no thread) and resumes when bytes arrive; the
worker's sweep closes it once --header-timeout has passed since it was accepted.

PROXY protocol (--proxy-protocol): from an address in --proxy-allow-ips, the connection must start with a
v1 or v2 header (else 400 and close), and its source address becomes the connection's peer. From any
other address, a connection starting with a PROXY header is refused (403 and close, with a log line),
because believing it would let any client choose its address; one without a header is served as usual,
so direct clients keep working. The header is read with MSG_PEEK and consumed to its exact length, so the
TLS ClientHello or the request that follows stays in the socket for the next step.
"""

from __future__ import annotations

import logging
import socket
import time

from .config import Settings
from .connection import Connection
from .forwarded import trust_for
from .protocol import ServerState
from .proxyproto import ProxyError, parse, starts_like_proxy, wanted
from .tls import CLOSED, READY, WAIT, TLSConnection, describe_peer, server_context
from .writer import error_response

log = logging.getLogger("ehttpd.error")

PROXY, TLS = 1, 2  # bits of Connection.pending


class Preamble:
    """The per-connection steps of one worker, configured once from the settings."""

    def __init__(self, settings: Settings, state: ServerState) -> None:
        self.context = server_context(settings)
        if self.context is not None:
            state.scheme = "https"
        self.proxies = trust_for(settings.proxy_allow_ips) if settings.proxy_protocol else None
        forwarders = trust_for(settings.forwarded_allow_ips)
        self.trusted = forwarders.peer if forwarders else None
        self.steps = (PROXY if self.proxies is not None else 0) | (TLS if self.context is not None else 0)
        self.settings = settings
        self.body_timeout = settings.body_timeout

    def connection(self, sock: socket.socket, peer, addr) -> Connection:
        """The Connection for a socket just accepted."""
        if not self.steps:  # plain HTTP: the common case, kept short
            conn = Connection(sock, peer, addr, self.body_timeout)
            if self.trusted is not None:
                conn.trusted = self.trusted(peer)
            return conn
        settings = self.settings
        if self.context is not None:
            conn = TLSConnection(
                sock, peer, addr, settings.body_timeout, settings.keepalive_grace, settings.send_timeout
            )
        else:
            conn = Connection(sock, peer, addr, settings.body_timeout)
        conn.pending = self.steps
        return conn

    def serve(self, conn: Connection, protocol) -> bool:
        """Do the connection's pending steps, then serve it; as `protocol.serve`, True means park it."""
        if conn.pending & PROXY:
            step = self.read_proxy_header(conn)
            if step != READY:
                return self.suspend(conn, step)
            conn.pending &= ~PROXY
        if conn.pending & TLS:
            step = conn.start(self.context, self.settings.linger)  # type: ignore[attr-defined]
            if step != READY:
                return self.suspend(conn, step)
            conn.pending &= ~TLS
        if self.trusted is not None:
            conn.trusted = self.trusted(conn.peer)
        if not conn.buf:
            conn.head_started = None
        return protocol.serve(conn)

    @staticmethod
    def suspend(conn: Connection, step: int) -> bool:
        if step == CLOSED:
            return False
        if conn.buf and conn.head_started is None:
            conn.head_started = time.monotonic()  # the sweep answers 408 once --header-timeout has passed
        return True

    # -- PROXY protocol -------------------------------------------------------------------------------
    def read_proxy_header(self, conn: Connection) -> int:
        """Read the PROXY header of `conn` (allowed peers) or make sure there is none (other peers)."""
        assert self.proxies is not None
        try:
            return self._read_proxy_header(conn, self.proxies.peer(conn.peer))
        except OSError:  # the peer reset the connection between a peek and its read
            conn.close()
            return CLOSED

    def _read_proxy_header(self, conn: Connection, allowed: bool) -> int:
        buf = conn.buf
        while True:
            try:  # blocking with the kernel timeout of the keep-alive grace
                data = conn.sock.recv(wanted(buf), socket.MSG_PEEK)
            except BlockingIOError:
                return WAIT
            except OSError:
                data = b""
            if not data:
                conn.close()
                return CLOSED
            seen = bytes(buf) + data
            if not allowed:
                looks = starts_like_proxy(seen)
                if looks is False:
                    return READY
                if looks:
                    return self.refuse(conn, 403, "PROXY protocol header from a peer not in proxy_allow_ips")
                consume(conn, len(data))  # could still be either: neither is TLS, so take the bytes
                continue
            try:
                header = parse(seen)
            except ProxyError as exc:
                return self.refuse(conn, 400, f"invalid PROXY protocol header ({exc})")
            if header is None:
                consume(conn, len(data))  # all of it belongs to the header
                continue
            consume(conn, header.consumed - len(buf))
            buf.clear()
            if header.source is not None:
                conn.peer = header.source
            return READY

    def refuse(self, conn: Connection, status: int, why: str) -> int:
        log.warning("connection from %s: %s; answered %d and closed", describe_peer(conn.peer), why, status)
        try:
            conn.sock.sendall(error_response(status, why))
        except OSError:
            conn.close()
            return CLOSED
        conn.linger_close(self.settings.linger)
        return CLOSED


def consume(conn: Connection, count: int) -> None:
    """Move `count` bytes already seen with MSG_PEEK from the socket into the connection's buffer."""
    while count > 0:
        data = conn.sock.recv(count)
        if not data:
            raise ConnectionResetError("closed while reading its PROXY header")
        conn.buf += data
        count -= len(data)
