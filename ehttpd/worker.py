"""One worker process: a poller thread over the listeners and parked connections, and a thread pool.

The main thread owns a selector. It accepts new connections and hands them to the pool; a pool thread
serves a connection while requests come and gives it back when the client goes quiet; the poller parks it
until it is readable again, and closes it when its idle or head deadline passes. So a thread is held only
while there is work on its connection (docs/architecture.md has the measurements behind this shape).
"""

from __future__ import annotations

import logging
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable

from .config import Settings
from .connection import Connection, timeval
from .errors import RequestTimeout
from .interface import make_protocol
from .pool import ThreadPool
from .protocol import ServerState
from .sockets import bind_socket, describe
from .writer import error_response

log = logging.getLogger("ehttpd.error")

SOCKOPTS_INHERITED = sys.platform.startswith("linux")  # accepted sockets copy the listener's options

SWEEP_INTERVAL = 0.25  # seconds between deadline sweeps of parked connections
ACCEPT_BATCH = 16  # connections accepted per readiness event, so sibling workers get their share


class Worker:
    """Serves `app` on already-listening sockets until stopped."""

    def __init__(
        self,
        app: object,
        listeners: Iterable[socket.socket],
        settings: Settings,
        *,
        on_tick: Callable[[Worker], None] | None = None,
        name: str = "ehttpd",
    ) -> None:
        self.settings = settings
        self.listeners = list(listeners)
        self.addresses = {
            listener: (int(listener.family), listener.getsockname()) for listener in self.listeners
        }
        for listener in self.listeners:
            set_connection_options(listener, listener.family, settings)
        self.on_tick = on_tick
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.parked: dict[int, Connection] = {}
        self.open_connections = 0
        self.accepting = False
        self.pool = ThreadPool(settings.threads, self._serve_connection, name=name)
        self.state = ServerState(self.pool.work_waiting)
        self.protocol = make_protocol(app, settings, self.state)
        self.stop_deadline: float | None = None  # set when a graceful stop begins
        self.alive = True
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- the poller (main thread) ----------------------------------------------------------------------
    def run(self) -> None:
        """Serve until `stop()`; returns once connections are drained or the graceful timeout passed."""
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._resume_accepting()
        self.pool.start()
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while self.alive:
            for key, _ in self.selector.select(SWEEP_INTERVAL):
                data = key.data
                if data is None:
                    self._drain_wakeups()
                elif isinstance(data, Connection):
                    self._unpark(data)
                else:
                    self._accept(key.fileobj)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + SWEEP_INTERVAL
                self._sweep(now)
                if self.on_tick is not None:
                    self.on_tick(self)
            if self.stop_deadline is not None and (self.open_connections == 0 or now >= self.stop_deadline):
                break
        self._shutdown()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            conn = self._accept_one(listener)
            if conn is None:
                return
            self.pool.submit(conn)

    def _accept_one(self, listener: socket.socket) -> Connection | None:
        """Accept one pending connection, or None if there is none or the connection cap is reached."""
        if self.open_connections >= self.settings.max_connections:
            self._wake()  # the poller pauses accepting on its own thread
            return None
        try:
            # _accept() and a socket built from the descriptor skip socket.accept()'s enum conversions.
            fd, peer = listener._accept()  # type: ignore[attr-defined]
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:  # EMFILE and friends: back off instead of spinning
            log.error("accept failed: %s", exc)
            return None
        family, addr = self.addresses[listener]
        sock = socket.socket(family, socket.SOCK_STREAM, 0, fileno=fd)
        if not SOCKOPTS_INHERITED:
            set_connection_options(sock, family, self.settings)
        with self.lock:
            self.open_connections += 1
        return Connection(sock, peer, addr, self.settings.body_timeout)

    def _unpark(self, conn: Connection) -> None:
        with self.lock:
            if self.parked.pop(conn.sock.fileno(), None) is None:
                return
            self.selector.unregister(conn.sock)
        self.pool.submit(conn)

    def _sweep(self, now: float) -> None:
        """Close parked connections whose idle or head deadline has passed."""
        settings = self.settings
        for conn in list(self.parked.values()):
            if conn.buf:
                if conn.head_started is not None and now - conn.head_started > settings.header_timeout:
                    self._expire(conn, answer_408=True)
            else:
                limit = settings.keepalive_timeout if conn.requests else settings.header_timeout
                if self.stop_deadline is not None or now - conn.idle_since > limit:
                    self._expire(conn, answer_408=False)

    def _expire(self, conn: Connection, answer_408: bool) -> None:
        with self.lock:
            if self.parked.pop(conn.sock.fileno(), None) is None:
                return
            self.selector.unregister(conn.sock)
        if answer_408:
            exc = RequestTimeout("timed out reading the request head")
            try:
                conn.sock.send(error_response(exc.status, exc.reason), socket.MSG_DONTWAIT)
            except OSError:
                pass
        self._closed(conn)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass
        # Listeners are re-registered here, on the poller's own thread, once connections have closed.
        if self.open_connections < self.settings.max_connections:
            self._resume_accepting()

    def _pause_accepting(self) -> None:
        if self.accepting:
            self.accepting = False
            for listener in self.listeners:
                self.selector.unregister(listener)

    def _resume_accepting(self) -> None:
        if not self.accepting and self.stop_deadline is None:
            self.accepting = True
            for listener in self.listeners:
                self.selector.register(listener, selectors.EVENT_READ, "listener")

    # -- pool threads ----------------------------------------------------------------------------------
    def _serve_connection(self, conn: Connection | None) -> None:
        while conn is not None:
            try:
                keep = self.protocol.serve(conn)
            except Exception:
                log.exception("connection loop failed")
                keep = False
            if keep and self.stop_deadline is None:
                self._park(conn)
            else:
                self._closed(conn)
            # Take the next pending connection ourselves: no hand-off through the poller and the queue.
            conn = self._accept_next() if self.accepting and not self.pool.work_waiting() else None

    def _accept_next(self) -> Connection | None:
        for listener in self.listeners:
            conn = self._accept_one(listener)
            if conn is not None:
                return conn
        return None

    def _park(self, conn: Connection) -> None:
        with self.lock:
            self.parked[conn.sock.fileno()] = conn
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _closed(self, conn: Connection) -> None:
        conn.close()
        with self.lock:
            self.open_connections -= 1
            resume = not self.accepting and self.open_connections < self.settings.max_connections
        if resume:
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- stopping --------------------------------------------------------------------------------------
    def stop(self, graceful_timeout: float = 30.0) -> None:
        """Stop accepting; let in-flight requests finish within `graceful_timeout`. Signal-handler safe."""
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + graceful_timeout
            self.state.stopping = True
        self._wake()

    def stop_now(self) -> None:
        """Stop without waiting for in-flight requests."""
        self.alive = False
        self._wake()

    def _shutdown(self) -> None:
        self._pause_accepting()
        for conn in list(self.parked.values()):
            self._expire(conn, answer_408=False)
        self.pool.stop(timeout=0.5)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()


def set_connection_options(sock: socket.socket, family: int, settings: Settings) -> None:
    """Kernel timeouts and TCP_NODELAY; set on a listener, Linux passes them on to accepted sockets."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(settings.keepalive_grace))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(settings.send_timeout))
    if family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def install_signal_handlers(worker: Worker, graceful_timeout: float) -> None:
    """TERM: graceful stop; INT and QUIT: fast stop (as gunicorn and uWSGI)."""
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(graceful_timeout))
    signal.signal(signal.SIGINT, lambda *_: worker.stop_now())
    signal.signal(signal.SIGQUIT, lambda *_: worker.stop_now())


def serve(
    app: object,
    bind: str | list[str] = "127.0.0.1:8000",
    threads: int = 32,
    settings: Settings | None = None,
    graceful_timeout: float = 30.0,
) -> None:
    """Serve `app` in this process until SIGTERM / SIGINT: the embeddable entry point."""
    if settings is None:
        settings = Settings(bind=[bind] if isinstance(bind, str) else list(bind), threads=threads)
    listeners = [bind_socket(spec, settings.backlog) for spec in settings.bind]
    worker = Worker(app, listeners, settings)
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers(worker, graceful_timeout)
    for listener in listeners:
        log.info("listening on http://%s", describe(listener))
    try:
        worker.run()
    finally:
        for listener in listeners:
            listener.close()
