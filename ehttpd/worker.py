"""One worker process: a pool of threads sharing one epoll set over the listeners and parked connections.

One pool thread at a time serves (the pool's `Gate`): it takes the connections epoll reported ready, in
the order reported (the `ready` queue, filled up to BATCH events per epoll call), accepts new ones, and
serves each itself, with no hand-off between threads on the request path. After each answer, if other
connections wait, it parks the connection and serves the next: one request per turn, so a fast client
cannot keep the thread from the others, and an idle or dribbling client never holds a thread. The threads
share the GIL, so more of them only help while one is stalled (blocked in a handler, on a slow client, or
computing for long): the main thread looks every 2 ms and lets one more in for each stalled one. It also
sweeps deadlines (idle keep-alive, slow heads) and runs `on_tick` (heartbeat, recycling checks).
docs/architecture.md has the measurements behind this shape.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from .config import Settings
from .connection import Connection, timeval
from .errors import RequestTimeout
from .interface import make_protocol
from .pool import Gate, ThreadPool, thread_blocked
from .preamble import Preamble
from .protocol import ServerState
from .sockets import bind_socket, describe
from .writer import error_response

log = logging.getLogger("ehttpd.error")

SOCKOPTS_INHERITED = sys.platform.startswith("linux")  # accepted sockets copy the listener's options
SWEEP_INTERVAL = 0.25  # seconds between deadline sweeps of parked connections
STALL_CHECK = 0.002  # seconds between the main thread's looks at what the serving threads do
STALLED = 2  # checks after the first with no new request on its connection: a blocked thread stalled
CPU_STALLED = 25  # ... and a running one (a long computation): about 50 ms
# Edge-triggered: a connection stays registered from its first park to its close (no epoll_ctl per
# request), and each arrival of bytes reports it once. An event taken while its connection is being served
# marks it `woken`, and parking it then queues it again, so no arrival is missed.
PARKED = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
BATCH = 16  # events taken per epoll call
# Not EPOLLEXCLUSIVE: it hands a new connection's wake-up to one worker only, and when that worker is
# stopping (HUP, TTOU, recycling) and unregisters the listener, the connection waits unaccepted until
# another one arrives. Waking every worker costs one EAGAIN accept per extra worker; the busiest worker
# is the slowest to answer, which also spreads connections.
LISTENING = select.EPOLLIN


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
        self.listeners = {sock.fileno(): sock for sock in listeners}
        self.addresses = {fd: (int(sock.family), sock.getsockname()) for fd, sock in self.listeners.items()}
        for sock in self.listeners.values():
            sock.setblocking(False)
            set_connection_options(sock, sock.family, settings)
        self.on_tick = on_tick
        self.epoll = select.epoll()
        self.lock = threading.Lock()
        self.parked: dict[int, Connection] = {}
        self.lingering: list[Connection] = []  # closed after an error once the client is done (sweep)
        self.open_connections = 0
        self.accepting = False
        self.pool = ThreadPool(settings.threads, self._thread_loop, name=name)
        self.gate = Gate(settings.threads)
        self.serving: dict[int, Connection] = {}  # thread ident -> the connection it serves (busy threads)
        self.native_ids: dict[int, int] = {}  # thread ident -> its kernel thread id (thread_blocked)
        self._stalls: dict[int, tuple[Connection, int, int]] = {}  # ident -> (conn, its requests, checks)
        self.state = ServerState(self._work_waiting)
        self.preamble = Preamble(settings, self.state)  # TLS, PROXY protocol, trusted proxies
        self.protocol = make_protocol(app, settings, self.state)
        self.stop_deadline: float | None = None  # set when a graceful stop begins
        self.alive = True
        # Wakes the main loop early. A pipe, not a threading.Event: stop() runs in signal handlers, and
        # Event.set() there deadlocks when the signal lands while the main thread holds the Event's lock.
        self._tick_r, self._tick_w = os.pipe()
        os.set_blocking(self._tick_w, False)
        self.ready: deque[int] = deque()  # descriptors epoll reported, in order, not yet taken by a thread
        self.woken: set[int] = set()  # connections reported ready while being served (re-queued at park)
        self.pollers = 0  # threads waiting in epoll; one is kicked when the queue fills behind their back
        self._kick = os.eventfd(0, os.EFD_NONBLOCK)
        self._stepping_out = threading.local()  # this thread leaves the gate after its connection
        self._wake_r, self._wake_w = os.pipe()

    # -- the main thread: deadlines and housekeeping ------------------------------------------------------
    def run(self) -> None:
        """Serve until `stop()`; returns once connections are drained or the graceful timeout passed."""
        self.epoll.register(self._wake_r, select.EPOLLIN)
        self.epoll.register(self._kick, select.EPOLLIN | select.EPOLLET)  # wakes one waiting thread
        self._resume_accepting()
        self.pool.start()
        next_sweep = 0.0
        while self.alive:
            nudged = self._wait_tick()
            self._check_stalls()
            now = time.monotonic()
            if now < next_sweep and not nudged:
                continue
            next_sweep = now + SWEEP_INTERVAL
            if self.stop_deadline is not None:
                self._stop_listening()
            self._sweep(now)
            if self.on_tick is not None:
                self.on_tick(self)
            if self.stop_deadline is not None and (self.open_connections == 0 or now >= self.stop_deadline):
                break
        self._shutdown()

    def _wait_tick(self) -> bool:
        """Sleep until the next stall check, or until `_nudge()` (then True)."""
        if select.select([self._tick_r], [], [], STALL_CHECK)[0]:
            os.read(self._tick_r, 4096)
            return True
        return False

    def _nudge(self) -> None:
        try:
            os.write(self._tick_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the main loop wakes anyway

    def _check_stalls(self) -> None:
        """Let one more thread serve for each serving thread that stalled (see `Gate`).

        A thread has stalled when its connection has started no new request in STALLED checks after the
        first while the thread is blocked, or in CPU_STALLED checks while it runs: a thread the scheduler has
        merely preempted for a few milliseconds does not count, so fast requests keep one thread.
        """
        previous = self._stalls
        current = {}
        stalled = 0
        for ident, conn in list(self.serving.items()):
            seen = previous.get(ident)
            checks = seen[2] + 1 if seen and seen[0] is conn and seen[1] == conn.requests else 0
            current[ident] = (conn, conn.requests, checks)
            if checks >= CPU_STALLED or (checks >= STALLED and thread_blocked(self.native_ids[ident])):
                stalled += 1
        self._stalls = current
        self.gate.allow(1 + stalled)

    def _sweep(self, now: float) -> None:
        """Close parked connections whose idle or head deadline has passed (all idle ones when stopping),
        and lingering ones the client is done with."""
        if self.lingering:
            self._linger(now)
        settings = self.settings
        stopping = self.stop_deadline is not None
        for conn in list(self.parked.values()):
            if conn.buf:
                if conn.head_started is not None and now - conn.head_started > settings.header_timeout:
                    self._expire(conn, answer_408=True)
            else:
                limit = settings.keepalive_timeout if conn.requests else settings.header_timeout
                if stopping and conn.requests:
                    # A request may be on its way: wait the grace after the last answer, and leave one that
                    # has arrived to the thread its epoll event goes to (it answers with Connection: close).
                    limit = settings.keepalive_grace
                    if now - conn.idle_since > limit and _readable(conn.sock):
                        continue
                if now - conn.idle_since > limit:
                    self._expire(conn, answer_408=False)

    def _linger(self, now: float) -> None:
        with self.lock:
            lingering, self.lingering = self.lingering, []
        for conn in lingering:
            if conn.linger_step(now):
                self._closed(conn)
            else:
                with self.lock:
                    self.lingering.append(conn)

    def _expire(self, conn: Connection, answer_408: bool) -> None:
        if self._take_parked(conn.fd) is None:
            return  # a thread picked it up meanwhile
        if answer_408:
            exc = RequestTimeout("timed out reading the request head")
            conn.send_now(error_response(exc.status, exc.reason))
            metrics = getattr(self.protocol, "metrics", None)  # raw mode has none
            if metrics is not None:  # counted like every response, timed from the head's first byte
                started = conn.head_started
                metrics.observe(exc.status, time.monotonic() - started if started is not None else 0.0)
        self._closed(conn)

    # -- pool threads -------------------------------------------------------------------------------------
    def _thread_loop(self) -> None:
        self.native_ids[threading.get_ident()] = threading.get_native_id()
        gate = self.gate
        while self.alive and gate.enter():
            try:
                self._run()
            finally:
                gate.leave()
                self._kick_if_waiting()  # what this thread leaves queued goes to one still inside

    def _run(self) -> None:
        """Inside the gate: take events and serve them until the worker stops or this thread steps out."""
        ready = self.ready
        stepping_out = self._stepping_out
        stepping_out.now = False
        while self.alive and not stepping_out.now:
            if ready:
                conn = self._take_ready()
                if conn is not None:
                    self._serve(conn)
            else:
                self._wait_for_events()

    def _wait_for_events(self) -> None:
        with self.lock:
            self.pollers += 1
        try:
            if not self.ready:  # checked after counting in: a thread that queues events now kicks us
                self._queue(self.epoll.poll(-1, BATCH))  # EINTR is retried by Python (PEP 475)
        finally:
            with self.lock:
                self.pollers -= 1

    def _queue(self, events: list[tuple[int, int]]) -> None:
        """Append reported descriptors to `ready`; the wake pipe (level-triggered: every thread sees it and
        re-checks `alive`) and the kick only wake threads."""
        wake = self._wake_r
        kick = self._kick
        append = self.ready.append
        for fd, _ in events:
            if fd != wake and fd != kick:
                append(fd)

    def _kick_if_waiting(self) -> None:
        if self.ready and self.pollers:
            try:
                os.eventfd_write(self._kick, 1)
            except OSError:
                pass  # the worker is shutting down

    def _serve(self, conn: Connection | None) -> None:
        """Serve `conn`, then the queued connections and those waiting to be accepted, until none is left."""
        serving = self.serving
        ident = threading.get_ident()
        while conn is not None:
            serving[ident] = conn  # read by the stall check, the request-timeout watchdog, the busy gauge
            try:
                protocol = self.protocol  # a connection with `pending` steps (PROXY, TLS) does those first
                keep = protocol.serve(conn) if not conn.pending else self.preamble.serve(conn, protocol)
            except BaseException:  # SystemExit from application code would end the thread silently
                log.exception("connection loop failed")
                keep = False
            if keep and (self.stop_deadline is None or not conn.requests):  # a new one gets its first answer
                self._park(conn)
            else:
                self._closed(conn)
            if self._stepping_out.now:  # over the gate's count: what is queued goes to the threads inside
                break
            conn = self._take_ready() or (self._accept_next() if self.accepting else None)
        serving.pop(ident, None)

    def _accept_next(self) -> Connection | None:
        for fd in self.listeners:
            conn = self._accept_one(fd)
            if conn is not None:
                return conn
        return None

    def _accept_one(self, fd: int) -> Connection | None:
        """Accept one pending connection, or None if there is none or the connection cap is reached."""
        if self.open_connections >= self.settings.max_connections:
            self._pause_accepting()
            return None
        with self.lock:  # not while `_stop_listening` closes the listener
            listener = self.listeners.get(fd)
            if listener is None:
                return None
            try:
                # _accept() and a socket built from the descriptor skip socket.accept()'s enum conversions.
                conn_fd, peer = listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:  # EMFILE and friends: log, and let the next event retry
                failure = exc
            else:
                self.open_connections += 1
                failure = None
        if failure is not None:
            log.error("accept failed: %s", failure)
            return None
        return self._connection(fd, conn_fd, peer)

    def _connection(self, fd: int, conn_fd: int, peer) -> Connection:
        """The Connection for a descriptor accepted on listener `fd`."""
        family, addr = self.addresses[fd]
        sock = socket.socket(family, socket.SOCK_STREAM, 0, fileno=conn_fd)
        if not SOCKOPTS_INHERITED or family == socket.AF_UNIX:  # Linux copies them to TCP sockets only
            set_connection_options(sock, family, self.settings)
        return self.preamble.connection(sock, peer, addr)

    def _work_waiting(self) -> bool:
        """Whether other connections wait for this thread: then its current one yields its turn.

        Looks at the `ready` queue, and when that is empty takes pending events without waiting (one
        epoll_wait(0) per BATCH). A thread over the gate's count steps out instead (True).
        """
        if self.gate.crowded:
            self._stepping_out.now = True
            return True
        if not self.ready:
            self._take_events()
        return bool(self.ready)

    def _take_events(self) -> None:
        """Queue what epoll reports pending, without waiting."""
        events = self.epoll.poll(0, BATCH)
        if events:
            self._queue(events)
            self._kick_if_waiting()  # another thread inside waits in epoll: this one may stall next

    def _take_ready(self) -> Connection | None:
        """The connection of the next queued event: accepted, or taken from the parked ones."""
        try:
            fd = self.ready.popleft()
        except IndexError:
            return None
        if fd in self.listeners:
            if not self.accepting:
                return None
            conn = self._accept_one(fd)
            if conn is not None:
                # One connection per turn of the listener: what epoll reports now (the listener again if
                # more wait, behind the connections ready before them) goes in the queue, so a burst of
                # new connections neither waits for the queue to run dry nor jumps ahead of it.
                self._take_events()
            return conn
        with self.lock:
            conn = self.parked.pop(fd, None)
            if conn is None:  # being served (or closed): parking it queues it again
                self.woken.add(fd)
        return conn

    def _park(self, conn: Connection) -> None:
        fd = conn.fd
        with self.lock:
            self.parked[fd] = conn
            if not conn.registered:
                conn.registered = True
                self.epoll.register(fd, PARKED)
            if fd in self.woken:  # bytes arrived while it was served: its event was taken meanwhile
                self.woken.discard(fd)
                self.ready.append(fd)

    def _take_parked(self, fd: int) -> Connection | None:
        with self.lock:
            return self.parked.pop(fd, None)

    def _closed(self, conn: Connection) -> None:
        if conn.linger_until is not None and not conn.closed:  # the sweep closes it (linger_step)
            with self.lock:
                self.lingering.append(conn)
            return
        conn.close()  # closing the descriptor also removes it from the epoll set
        with self.lock:
            self.open_connections -= 1
            self.woken.discard(conn.fd)
        if not self.accepting and self.open_connections < self.settings.max_connections:
            self._resume_accepting()

    def _pause_accepting(self) -> None:
        with self.lock:
            if self.accepting:
                self.accepting = False
                for fd in self.listeners:
                    self.epoll.unregister(fd)

    def _resume_accepting(self) -> None:
        with self.lock:
            if not self.accepting and self.stop_deadline is None:
                self.accepting = True
                for fd in self.listeners:
                    self.epoll.register(fd, LISTENING)

    # -- stopping -----------------------------------------------------------------------------------------
    def _stop_listening(self) -> None:
        """At a graceful stop: take the connections waiting in the accept queue, then close the listeners.

        The client of a queued connection saw it accepted, and closing the listening socket would reset
        it; taken, it is parked and answered like any other (with Connection: close). The master closed
        its copies at the stop, so once every worker has closed its own, new connections are refused.
        """
        taken = []
        with self.lock:
            listeners, self.listeners = self.listeners, {}  # a new dict: `_accept_next` may be iterating
            if self.accepting:
                self.accepting = False
                for fd in listeners:
                    self.epoll.unregister(fd)
            for fd, listener in listeners.items():
                while self.open_connections < self.settings.max_connections:
                    try:
                        conn_fd, peer = listener._accept()  # type: ignore[attr-defined]
                    except OSError:  # none left (or EMFILE: those are lost either way)
                        break
                    self.open_connections += 1
                    taken.append((fd, conn_fd, peer))
                listener.close()
        for fd, conn_fd, peer in taken:
            self._park(self._connection(fd, conn_fd, peer))  # epoll reports it once its request is there

    def stop(self, graceful_timeout: float = 30.0) -> None:
        """Stop accepting; let in-flight requests finish within `graceful_timeout`. Signal-handler safe."""
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + graceful_timeout
            self.state.stopping = True
        self._nudge()  # the main loop stops accepting (a signal handler must not take a lock)

    def stop_now(self) -> None:
        """Stop without waiting for in-flight requests."""
        self.alive = False
        self._nudge()

    def _shutdown(self) -> None:
        self.alive = False
        self.gate.close()
        self._pause_accepting()
        for conn in list(self.parked.values()):
            self._expire(conn, answer_408=False)
        for conn in self.lingering:
            conn.close()
        os.write(self._wake_w, b"x")  # wakes every thread waiting in epoll
        self.pool.join(timeout=0.5)


def _readable(sock: socket.socket) -> bool:
    """Whether bytes (or the end of the stream) wait on `sock`, without reading them."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


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
    threads: int = 4,
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
