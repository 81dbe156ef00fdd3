"""The HTTP/1.1 connection loop: read a head, build the Request, call the handler, write the Response.

A pool thread runs `serve(conn)` for one request, and for more only while no other connection waits: then
it hands the connection back (returns True) for the worker to park, as it does when the client goes quiet,
so connections take turns and an idle or dribbling client never holds a thread. A thread only waits a
short grace on a new connection's first request, when no other connection is queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .accesslog import AccessLog, AccessRecord
from .body import EMPTY_BODY, Body, ChunkedBody, LengthBody
from .config import Settings
from .connection import Connection
from .errors import ClientDisconnected, HTTPError, RequestTimeout
from .forwarded import native_view, trust_for
from .headers import Headers
from .parser import RequestHead, find_head, parse_head
from .request import Request
from .response import Response
from .writer import ResponseWriter, error_response

log = logging.getLogger("ehttpd.error")

PARK, CLOSE, MORE = 0, 1, 2


class ServerState:
    """What the protocol loop needs to know of the worker around it."""

    __slots__ = ("requests", "scheme", "stopping", "work_waiting")

    def __init__(self, work_waiting: Callable[[], bool]) -> None:
        self.stopping = False
        self.work_waiting = work_waiting  # True when connections wait for a free thread
        self.requests = 0
        self.scheme = "http"


class HTTPProtocol:
    """Serves HTTP/1.1 requests on a connection with a request → response handler."""

    def __init__(
        self, handler: Callable[[Request], Response], settings: Settings, state: ServerState
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.limits = settings.limits
        self.state = state
        self.writer = ResponseWriter(settings.server_header)
        self.access_log = (
            AccessLog(settings.access_log, settings.access_log_format) if settings.access_log else None
        )
        self.forwarders = trust_for(settings.forwarded_allow_ips)  # used on connections with `trusted` set
        self.metrics = None  # a metrics.RequestMetrics with --metrics-bind (attach_metrics)
        self.recording = self.access_log is not None  # each request gets an AccessRecord

    def attach_metrics(self, metrics) -> None:
        """Count every response (status class, duration) in `metrics`, from the same record the access
        log uses: with neither on, a request costs one flag check here and one `is None` in settle."""
        self.metrics = metrics
        self.recording = True

    def serve(self, conn: Connection) -> bool:
        """Serve requests while they come; True if the connection should be parked, False once closed."""
        buf = conn.buf
        limits = self.limits
        answered = False
        while True:
            try:
                end = find_head(buf, limits) if buf else -1
                if end < 0:
                    step = await_bytes(conn, self.state, self.settings, answered)
                    if step == MORE:
                        continue
                    if step == CLOSE:
                        conn.close()
                        return False
                    return True
                head = parse_head(buf, end, limits)
            except HTTPError as exc:
                self.reject(conn, exc)
                return False
            del buf[:end]
            conn.head_started = None
            conn.requests += 1  # counted here once for every interface's handle()
            self.state.requests += 1
            if self.recording:
                conn.record = AccessRecord(head, conn.sent)
            if not self.handle(conn, head):
                return False
            answered = True
            conn.idle_since = time.monotonic()

    def handle(self, conn: Connection, head: RequestHead) -> bool:
        """Run the handler for one request and write its response; False once the connection is closed."""
        body = self.make_body(conn, head)
        req = Request(
            head.method,
            head.target,
            head.version,
            Headers(head.headers),
            body,
            conn.peer,
            conn.server_addr,
            self.state.scheme,
            head.keep_alive,
        )
        if conn.trusted:  # the peer is a trusted proxy: X-Forwarded-* / Forwarded name the client
            req.peer, req.scheme, host = native_view(self.forwarders, head.headers, req.peer, req.scheme)
            if host is not None:
                req.host = host
        try:
            resp = self.handler(req)
            if not isinstance(resp, Response):
                raise TypeError(f"handler returned {type(resp).__name__}, not a Response")
        except HTTPError as exc:
            # The body stream itself failed (framing, size, timeout): nothing after it can be trusted.
            self.reject(conn, exc)
            return False
        except ClientDisconnected:
            conn.close()
            return False
        except BaseException:  # SystemExit too: a pool thread must outlive any handler
            log.exception("handler failed on %s %s", head.method, head.target)
            resp = Response.internal_error()
        return self.respond(conn, head, body, resp)

    def respond(self, conn: Connection, head: RequestHead, body: Body, resp: Response) -> bool:
        """Write `resp`, then settle the connection; False once it is closed (shared with WSGI)."""
        keep = self.head_goes_out(head, body)
        try:
            keep = self.writer.write(conn, resp, head.method, head.version, keep)
        except (OSError, ClientDisconnected):
            conn.close()
            return False
        except BaseException:  # an iterable body runs the handler's code
            log.exception("writing the response failed on %s %s", head.method, head.target)
            conn.close()
            return False
        return self.settle(conn, body, keep)

    def settle(self, conn: Connection, body: Body, keep: bool) -> bool:
        """After a response: drain what is left of the request body to keep the connection, or close it."""
        record = conn.record
        if record is not None:
            conn.record = None
            if self.access_log is not None:
                record.write(self.access_log, conn)
            if self.metrics is not None and record.resp is not None:
                self.metrics.observe(record.resp.status, time.perf_counter() - record.started)
        if keep and not body.complete:
            # Only what arrives within the grace: a client that stops sending must not hold the thread
            # for a body timeout (closing instead is always allowed, RFC 9112 §9.3).
            grace = self.settings.keepalive_grace
            conn.body_timeout = grace  # each wait for bytes
            try:
                keep = body.drain(self.settings.max_drain, grace)
            except (HTTPError, OSError, ClientDisconnected):
                keep = False
            finally:
                conn.body_timeout = self.settings.body_timeout
        if not keep:
            conn.linger_close(self.settings.linger) if not body.complete else conn.close()
        return keep

    def head_goes_out(self, head: RequestHead, body: Body) -> bool:
        """The final response's head is about to be sent (here or by WSGI's write()): no 100 Continue may
        follow it, as the body may still be read (by an iterable, or after write()). Returns whether the
        connection may carry another request after this response."""
        if head.expect_continue:
            body.response_started()
        return head.keep_alive and not self.state.stopping and self.can_reuse(body)

    def reject(self, conn: Connection, exc: HTTPError) -> None:
        """Answer a request we cannot serve with its status, close with a lingering close; counted too."""
        try:
            conn.send(error_response(exc.status, exc.reason))
        except OSError:
            conn.close()
        else:
            conn.linger_close(self.settings.linger)
        record = conn.record
        conn.record = None
        if self.metrics is not None:
            self.metrics.observe(exc.status, time.perf_counter() - record.started if record else 0.0)

    def make_body(self, conn: Connection, head: RequestHead) -> Body:
        if head.chunked:
            return ChunkedBody(conn, self.limits, head.expect_continue)
        if head.content_length:
            return LengthBody(conn, head.content_length, head.expect_continue)
        return EMPTY_BODY

    def can_reuse(self, body: Body) -> bool:
        """Whether the connection can stay open given what the handler left unread of the body."""
        if body.complete:
            return True
        if body.broken:
            return False
        if isinstance(body, LengthBody):
            return not body._expect_continue and body.remaining <= self.settings.max_drain
        return False


def await_bytes(conn: Connection, state: ServerState, settings: Settings, answered: bool = False) -> int:
    """Read more of the next request: PARK when the client is quiet or, once `answered` (this turn served
    a request), when other connections wait; MORE when bytes came; CLOSE at the stream's end."""
    # Even when stopping: a request already on its way (a new connection's first, a keep-alive client's
    # next) is read and answered with Connection: close; closing now would reset it unanswered.
    if conn.buf:
        now = time.monotonic()
        if conn.head_started is None:
            conn.head_started = now
        elif now - conn.head_started > settings.header_timeout:
            raise RequestTimeout("timed out reading the request head")
    # Take only what is already here, and park the connection if nothing is: the thread goes on to the work
    # that waits, or back to epoll, which reports whichever connection speaks first. After an answer, the
    # connection yields to those waiting without a read: epoll reports the bytes that arrived, and the
    # connection comes round in its turn. It reads first where bytes may be left behind that epoll will
    # not report again: after a read that filled the buffer (`conn.more`), and on TLS (OpenSSL holds
    # decrypted bytes). Two cases wait the grace on this connection: a new connection's first request,
    # usually on its way, when no other work waits; and any request while stopping, as parking then closes
    # the connection with the request perhaps on its way.
    if state.stopping:
        n = conn.recv_wait()
    elif answered:
        if not conn.more and state.work_waiting():
            return PARK
        n = conn.recv_now()
    elif conn.requests or conn.buf or state.work_waiting():
        n = conn.recv_now()
    else:
        n = conn.recv_wait()
    if n < 0:
        return PARK
    return MORE if n else CLOSE
