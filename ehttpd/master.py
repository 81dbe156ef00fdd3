"""The master process: holds the listening sockets, forks the workers, supervises them, acts on signals.

Signal handlers only queue the signal (and wake the loop through a pipe); the main loop dispatches
`handle_<name>`, so each signal is one small method and nothing runs inside a handler. Every replacement
of a worker starts its successor first and stops the old one only once the successor is up; the old one
stops accepting at once and finishes its requests (docs/operations.md has the signals and the sequences).

    HUP        re-read the settings, start new workers with freshly imported code, then drain the old ones
    TERM       graceful stop within --graceful-timeout;  INT, QUIT: fast stop
    TTIN/TTOU  one worker more / less;  USR1: reopen log files;  USR2: exec a new master on the same sockets
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import select
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import pidfile
from .children import BOOTING, DRAINING, KILLED, UP, Child, describe_exit, fork_worker
from .config import Settings
from .control import control_path
from .controlsock import ControlServer, LoopServer, MetricsServer
from .heartbeat import METRICS_AT, Heartbeat
from .loader import AppLoadError, load_app
from .metrics import MasterMetrics, accept_queue
from .metrics import read as read_slot
from .proctitle import set_title
from .reopen import reopen_log_files
from .sockets import Listeners, open_listeners
from .systemd import notify, reloading_state
from .upgrade import exec_new_master, upgraded_from
from .worker import set_connection_options
from .workerproc import WorkerSpec

log = logging.getLogger("ehttpd.error")

HANDLED = {
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
}
TICK = 0.25  # seconds between supervision rounds (0.05 while a worker boots)
ABORT_GRACE = 2.0  # seconds from SIGABRT (stacks dumped) to SIGKILL for a hung worker
KILL_MARGIN = 2.0  # seconds past --graceful-timeout before a draining worker gets SIGKILL
FAST_STOP = 2.0  # seconds INT / QUIT give the workers before SIGKILL
MAX_BOOT_FAILURES = 5  # in a row, with no worker up: the master gives up
MAX_BACKOFF = 30.0  # seconds between boot attempts while workers keep failing to boot
SAMPLE_INTERVAL = 1.0  # seconds between psutil samples and status file writes
MEMORY_STRIKES = 3  # samples in a row over --max-worker-memory before a worker is recycled
EXIT_BOOT_FAILED = 3
OLD_SUFFIX = ".oldbin"  # the old master's pid file during an upgrade, as nginx and gunicorn name it


@dataclass
class Reload:
    """What a HUP changed, to go back to if the new workers do not boot."""

    settings: Settings
    target: int
    generation: int


class Master:
    """One master process; all its state lives in the instance."""

    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings] | None = None,
        early_signals: list[int] | None = None,
    ) -> None:
        self.settings = settings
        self.early_signals = early_signals if early_signals is not None else []  # came while starting
        self.reload_settings = reload_settings
        self.name = settings.name or settings.app
        self.pid = os.getpid()
        self.cwd = os.getcwd()
        self.target = settings.workers or os.cpu_count() or 1
        self.generations = itertools.count(1)
        self.generation = next(self.generations)
        self.workers: dict[int, Child] = {}
        self.signals: deque[int] = deque()
        self.listeners: Listeners | None = None
        self.app: object | None = None  # with --preload
        self.reload: Reload | None = None
        self.reload_pending = False
        self.boot_failures = 0
        self.spawn_after = 0.0
        self.stopping = False
        self.stop_fast = False
        self.stop_deadline = 0.0
        self.exit_status = 0
        self.done = False
        self.ready = False
        self.upgrade_pid: int | None = None  # the new master started by USR2
        self.pidfile = settings.pidfile
        self.next_sample = 0.0
        self.started = time.monotonic()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.metrics = MasterMetrics()
        self.endpoints: list[LoopServer] = []  # the control socket, /metrics: served from wait()
        self.metrics_pending = bool(settings.metrics_bind)  # not bound yet (retried once a second)
        self.metrics_warned = False

    # -- the main loop -------------------------------------------------------------------------------------
    def run(self) -> int:
        if self.pidfile and (other := pidfile.running_master(self.pidfile)) is not None:
            log.critical(
                "the pid file %s names master %d, which is running: not starting", self.pidfile, other
            )
            return 1
        try:
            self.listeners, source = open_listeners(self.settings, prepare=self.prepare_listener)
            for number in range(1, self.target + 1):
                self.listeners.for_slot(number)  # with --reuse-port: bind every slot's socket now
        except (OSError, ValueError) as exc:
            log.critical("cannot listen: %s", exc)
            if self.listeners is not None:
                self.listeners.close()
            return 1
        if self.settings.preload:
            try:
                self.app = load_app(self.settings.app, self.settings.chdir)
            except AppLoadError as exc:
                log.critical("cannot load the app: %s", exc)
                self.listeners.close()
                return EXIT_BOOT_FAILED
        set_title("master", self.name)
        self.install_signals()  # before the pid file: whoever reads it may signal at once
        if self.pidfile:
            try:
                pidfile.write(self.pidfile, self.pid)
            except OSError as exc:
                log.critical("cannot write the pid file %s: %s", self.pidfile, exc)
                self.listeners.close(unlink=self.may_unlink())
                return 1
        self.open_control()
        self.open_metrics()
        log.info(
            "master %d: %s on %s (%s), %d workers x %d threads",
            self.pid,
            self.settings.app,
            ", ".join(self.listeners.describe()),
            source,
            self.target,
            self.settings.threads,
        )
        try:
            while not self.done:
                self.tick()
        finally:
            self.cleanup()
        log.info("master %d: exit %d", self.pid, self.exit_status)
        return self.exit_status

    def prepare_listener(self, sock: socket.socket) -> None:
        """The workers' connection options, on the listener before it listens: Linux gives accepted
        connections the listener's options at handshake time, even those queued before a worker is up."""
        set_connection_options(sock, sock.family, self.settings)

    def tick(self) -> None:
        self.wait(0.05 if any(w.state == BOOTING for w in self.workers.values()) else TICK)
        try:
            self.reap()
            while self.signals:
                self.dispatch(self.signals.popleft())
            now = time.monotonic()
            self.check_workers(now)
            if self.stopping:
                self.check_stopped(now)
            else:
                self.check_reload()
                self.check_recycling(now)
                self.maintain(now)
                self.check_ready()
            if now >= self.next_sample:
                self.next_sample = now + SAMPLE_INTERVAL
                self.sample(now)
        except Exception:
            log.exception("master loop failed; continuing")
            time.sleep(0.1)

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in HANDLED:
            signal.signal(sig, self.on_signal)
        self.signals.extend(self.early_signals)  # those the launcher kept while starting (cli.py)

    def on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)  # the loop does the work; the wakeup fd has woken it

    def wait(self, timeout: float) -> None:
        readers, writers = [self.wake_r], []
        for endpoint in self.endpoints:
            readers += endpoint.readers()
            writers += endpoint.writers()
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self.endpoints:  # each serves what is ready and drops clients past their deadline
            now, ready_r, ready_w = time.monotonic(), set(readable), set(writable)
            for endpoint in self.endpoints:
                endpoint.ready(ready_r, ready_w, now)
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def dispatch(self, signum: int) -> None:
        name = signal.Signals(signum).name[3:].lower()
        handler = getattr(self, f"handle_{name}", None)
        if handler is not None:
            handler()

    # -- signals -------------------------------------------------------------------------------------------
    def handle_chld(self) -> None:
        pass  # reap() runs on every round

    def handle_term(self) -> None:
        log.info("TERM: graceful stop (up to %gs)", self.settings.graceful_timeout)
        self.begin_stop(graceful=True)

    def handle_int(self) -> None:
        log.info("INT: fast stop")
        self.begin_stop(graceful=False)

    def handle_quit(self) -> None:
        log.info("QUIT: fast stop")
        self.begin_stop(graceful=False)

    def handle_hup(self) -> None:
        if self.stopping:
            return
        if self.reload is not None:
            self.reload_pending = True  # one more reload once this one ends
            log.info("HUP: a reload is in progress; reloading again when it ends")
            return
        notify(reloading_state())
        settings = self.reread_settings()
        if self.settings.preload:
            log.warning(
                "HUP: with --preload the app was imported once in the master and is not reloaded; "
                "the workers restart with the same code (use USR2 to load new code)"
            )
        self.reload = Reload(self.settings, self.target, self.generation)
        self.settings = settings
        self.target = settings.workers or self.target
        self.generation = next(self.generations)
        log.info(
            "HUP: starting %d new workers (generation %d); the old ones serve until they are up",
            self.target,
            self.generation,
        )

    def handle_ttin(self) -> None:
        if not self.stopping:
            self.target += 1
            log.info("TTIN: %d workers", self.target)

    def handle_ttou(self) -> None:
        if not self.stopping and self.target > 1:
            self.target -= 1
            log.info("TTOU: %d workers", self.target)

    def handle_usr1(self) -> None:
        count = reopen_log_files()
        log.info("USR1: reopened %d log files; asking the workers to do the same", count)
        for child in self.workers.values():
            child.send(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        if self.stopping:
            return
        if self.upgrade_pid is not None:
            log.warning("USR2: an upgrade is already running (new master pid %d)", self.upgrade_pid)
            return
        assert self.listeners is not None
        self.move_pidfile(OLD_SUFFIX)  # first: the new master writes the pid file under its own name
        try:
            self.upgrade_pid = exec_new_master(self.listeners, self.cwd, HANDLED)
        except OSError as exc:
            log.error("USR2: cannot start a new master: %s", exc)
            self.move_pidfile("")
            return
        set_title("master", self.name, "old")
        log.info(
            "USR2: new master %d started on the same sockets; once its workers are up, "
            "send TERM to this master (%d) to finish the upgrade",
            self.upgrade_pid,
            self.pid,
        )

    # -- the settings ---------------------------------------------------------------------------------------
    def reread_settings(self) -> Settings:
        """The settings for a HUP; what only a restart can change keeps its current value."""
        old = self.settings
        if self.reload_settings is None:
            return old
        try:
            new = self.reload_settings()
        except Exception as exc:
            log.error("HUP: cannot re-read the settings (%s); keeping the current ones", exc)
            return old
        fixed = ["bind", "backlog", "reuse_port", "unix_socket_mode", "preload", "pidfile"]
        fixed += ["control_socket", "metrics_bind"]  # opened once by the master
        fixed += ["error_log", "log_level"]  # set up once, by the launcher (cli.py)
        if old.preload:
            fixed += ["app", "chdir"]
        changed = [name for name in fixed if getattr(new, name) != getattr(old, name)]
        if changed:
            log.warning(
                "HUP: %s changed; that needs a restart or a USR2 upgrade, keeping the current value",
                ", ".join(changed),
            )
        return replace(new, **{name: getattr(old, name) for name in fixed})

    # -- workers ---------------------------------------------------------------------------------------
    def spawn(self, number: int) -> Child | None:
        assert self.listeners is not None
        settings = self.settings
        heartbeat = Heartbeat()
        listeners = self.listeners.for_slot(number)
        spec = WorkerSpec(number, self.name, settings, listeners, heartbeat, self.pid, self.app)
        try:
            pid = fork_worker(spec, HANDLED, lambda: self.in_child(number))
        except OSError as exc:
            heartbeat.close()
            log.error("cannot fork a worker: %s", exc)
            self.spawn_after = time.monotonic() + 1.0
            return None
        jitter = random.randint(0, settings.max_requests_jitter) if settings.max_requests else 0
        child = Child(pid, number, self.generation, heartbeat, settings.max_requests + jitter)
        self.workers[pid] = child
        return child

    def in_child(self, number: int) -> None:
        """In a new worker, before it runs: drop what only the master needs."""
        os.close(self.wake_r)
        os.close(self.wake_w)
        for endpoint in self.endpoints:
            endpoint.close_in_child()
        assert self.listeners is not None
        for slot, socks in self.listeners.slots.items():
            if slot != number:
                for sock in socks:
                    sock.close()  # a reuse-port slot closed by the master must not live on in a worker

    def retire(self, child: Child, reason: str) -> None:
        """Graceful stop: the worker stops accepting at once and finishes its requests."""
        if child.state not in (BOOTING, UP):
            return
        child.send(signal.SIGTERM)
        child.state = DRAINING
        child.reason = child.reason or reason
        child.deadline = time.monotonic() + self.settings.graceful_timeout + KILL_MARGIN
        log.info("worker %d (pid %d) stops gracefully: %s", child.number, child.pid, child.reason)

    def abort(self, child: Child, silent: float) -> None:
        """A worker whose main loop is stuck: SIGABRT makes it log every thread's stack; SIGKILL follows."""
        log.error(
            "worker %d (pid %d) has not beaten for %.1fs (--timeout %gs): its main loop is stuck. "
            "SIGABRT (its threads' stacks follow), then SIGKILL; a new worker replaces it",
            child.number,
            child.pid,
            silent,
            self.settings.timeout,
        )
        child.send(signal.SIGABRT)
        child.state = KILLED
        self.metrics.restart("heartbeat")
        child.deadline = time.monotonic() + ABORT_GRACE

    def kill_now(self, child: Child) -> None:
        child.send(signal.SIGKILL)
        child.state = KILLED
        child.killed = True

    def serving(self) -> list[Child]:
        """The workers of the current generation that count towards the target."""
        return [
            w
            for w in self.workers.values()
            if w.generation == self.generation and w.state in (BOOTING, UP) and w.successor is None
        ]

    def maintain(self, now: float) -> None:
        """Start a worker for every empty slot; retire the ones above the target (TTOU)."""
        if now < self.spawn_after:
            return
        serving = self.serving()
        taken = {w.number for w in serving}
        for number in range(1, self.target + 1):
            if number not in taken and self.spawn(number) is None:
                return
        for child in serving:
            if child.number > self.target:
                self.retire(child, "fewer workers (TTOU)")
                self.metrics.restart("ttou")
                # reuse-port: the kernel routes new connections to the slot's socket while any process
                # holds it; the worker takes what is queued and closes its copy as it stops (worker.py)
                self.listeners.close_slot(child.number)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.upgrade_pid:
                self.upgrade_failed(status)
                continue
            child = self.workers.pop(pid, None)
            if child is not None:
                self.worker_exited(child, describe_exit(os.waitstatus_to_exitcode(status)))

    def worker_exited(self, child: Child, how: str) -> None:
        for other in self.workers.values():
            if other.successor == child.pid:
                other.successor = None  # its successor is gone: it serves on, and may be recycled again
        if child.state in (DRAINING, KILLED) or self.stopping:
            log.info("worker %d (pid %d) exited (%s)", child.number, child.pid, how)
        elif child.state == BOOTING:
            self.boot_failed(child, child.heartbeat.boot_error or f"it exited ({how}) before it was up")
        else:
            log.error("worker %d (pid %d) died (%s); starting a new one", child.number, child.pid, how)
            self.metrics.restart("crash")
        self.metrics.worker_gone(read_slot(child.heartbeat.memory, METRICS_AT)[1])
        child.heartbeat.close()
        numbers = {w.number for w in self.workers.values()}
        if self.listeners is not None and child.number > self.target and child.number not in numbers:
            self.listeners.close_slot(child.number)  # reuse-port: the slot's socket goes with its last worker

    def boot_failed(self, child: Child, why: str) -> None:
        if self.reload is not None and child.generation == self.generation:
            self.abort_reload(f"worker {child.number} failed to boot: {why}")
            return
        self.boot_failures += 1
        if self.boot_failures >= MAX_BOOT_FAILURES and not any(w.state == UP for w in self.workers.values()):
            log.critical("workers failed to boot %d times in a row, stopping. %s", self.boot_failures, why)
            self.exit_status = EXIT_BOOT_FAILED
            self.begin_stop(graceful=False)
            return
        delay = min(MAX_BACKOFF, 0.1 * 2 ** (self.boot_failures - 1))
        log.error(
            "worker %d (pid %d) failed to boot: %s; next try in %.1fs", child.number, child.pid, why, delay
        )
        self.spawn_after = time.monotonic() + delay

    def check_workers(self, now: float) -> None:
        """Boot, heartbeat, retirement requests, successors and deadlines of every worker."""
        timeout = self.settings.timeout or float("inf")
        for child in list(self.workers.values()):
            beat = child.heartbeat.last_beat
            if child.state == BOOTING:
                if beat > 0:
                    child.state = UP
                    self.boot_failures = 0
                    log.info("worker %d (pid %d) up", child.number, child.pid)
                elif now - child.started > timeout:
                    self.kill_now(child)
                    self.boot_failed(child, f"it did not boot within --timeout {timeout:g}s")
            elif child.state in (UP, DRAINING) and beat > 0 and now - beat > timeout:
                # (beat 0: retired while booting, before its first beat; its deadline stops it)
                self.abort(child, now - beat)
            elif child.state == UP and child.successor is not None:
                successor = self.workers.get(child.successor)
                if successor is not None and successor.state == UP:
                    self.retire(child, f"{child.reason}; replaced by pid {successor.pid}")
            elif child.state in (DRAINING, KILLED) and not child.killed and now >= child.deadline:
                log.warning("worker %d (pid %d) did not exit in time: SIGKILL", child.number, child.pid)
                self.kill_now(child)

    # -- recycling -------------------------------------------------------------------------------------
    def check_recycling(self, now: float) -> None:
        """One replacement at a time, successor first, so the workers never all restart together."""
        if self.reload is not None or now < self.spawn_after:
            return
        if any(w.state == UP and w.successor is not None for w in self.workers.values()):
            return
        for child in self.serving():
            reason, counted_as = self.recycle_reason(child)
            if child.state == UP and reason:
                successor = self.spawn(child.number)
                if successor is not None:
                    child.successor = successor.pid
                    child.reason = reason
                    self.metrics.restart(counted_as)
                    log.info("worker %d (pid %d) %s: starting its successor", child.number, child.pid, reason)
                return

    def recycle_reason(self, child: Child) -> tuple[str, str]:
        """Why `child` should be replaced, and the restart reason it counts as; ("", "") if it should not."""
        if child.heartbeat.retirement_asked:
            return "a request ran past --request-timeout", "request_timeout"
        requests = child.heartbeat.requests
        if child.max_requests and requests >= child.max_requests:
            return f"served {requests} requests (--max-requests {self.settings.max_requests})", "max_requests"
        if child.memory_strikes >= MEMORY_STRIKES:
            mb = child.rss / 2**20
            return f"uses {mb:.0f} MB (--max-worker-memory {self.settings.max_worker_memory})", "memory"
        return "", ""

    def sample(self, now: float) -> None:
        """psutil's view of each worker (for the memory limit and the status view)."""
        limit = self.settings.max_worker_memory * 2**20
        for child in self.workers.values():
            child.sample(limit)
        if self.metrics_pending and not self.stopping:
            self.open_metrics()

    def status_view(self, now: float | None = None) -> dict[str, Any]:
        """The live view `ehttpd status` shows, answered on the control socket."""
        now = time.monotonic() if now is None else now
        rows = []
        for child in sorted(self.workers.values(), key=lambda w: (w.number, w.started)):
            row = child.row(now)
            (conns, busy, threads), _ = read_slot(child.heartbeat.memory, METRICS_AT)
            row.update(open_connections=conns, busy_threads=busy, threads=threads)
            rows.append(row)
        return {
            "pid": self.pid,
            "name": self.name,
            "age": now - self.started,
            "generation": self.generation,
            "target": self.target,
            "reloading": self.reload is not None,
            "stopping": self.stopping,
            "restarts": dict(self.metrics.restarts),
            "workers": rows,
        }

    def metrics_text(self) -> str:
        """The Prometheus text of /metrics: sums over the live workers plus the exited ones."""
        slots = [read_slot(w.heartbeat.memory, METRICS_AT) for w in self.workers.values()]
        queued = accept_queue(self.listeners.all()) if self.listeners is not None else None
        return self.metrics.render(slots, queued, enabled=True)

    # -- the control socket and /metrics ----------------------------------------------------------------
    def open_control(self) -> None:
        path = control_path(self.settings)
        if not path:
            return
        try:
            self.endpoints.append(ControlServer(path, self.status_view))
        except OSError as exc:
            log.error("cannot open the control socket %s: %s (ehttpd status will not answer)", path, exc)

    def open_metrics(self) -> None:
        """Listen on --metrics-bind; while it is taken (the old master of an upgrade), retry each second."""
        spec = self.settings.metrics_bind
        if not spec:
            return
        try:
            self.endpoints.append(MetricsServer(spec, self.metrics_text))
        except (OSError, ValueError) as exc:
            if not self.metrics_warned:
                log.warning("cannot serve metrics on %s: %s; retrying every second", spec, exc)
            self.metrics_warned = True
            return
        self.metrics_pending = False
        log.info("metrics on http://%s/metrics", spec)

    # -- reload (HUP) ----------------------------------------------------------------------------------
    def check_reload(self) -> None:
        """When every slot of the new generation is up, the old workers drain."""
        if self.reload is None or not self.all_up():
            return
        old = [w for w in self.workers.values() if w.generation != self.generation]
        for child in old:
            self.retire(child, "reloaded (HUP)")
            self.metrics.restart("reload")
        self.reload = None
        log.info("HUP: generation %d serves; %d old workers finish their requests", self.generation, len(old))
        self.reloaded()

    def abort_reload(self, why: str) -> None:
        previous = self.reload
        assert previous is not None
        self.reload = None
        log.error("HUP: the reload failed, the old workers keep serving. %s", why)
        for child in self.serving():
            self.retire(child, "the reload failed")
        self.settings, self.target, self.generation = previous.settings, previous.target, previous.generation
        self.reloaded()

    def reloaded(self) -> None:
        notify("READY=1")
        if self.reload_pending:
            self.reload_pending = False
            self.handle_hup()

    def all_up(self) -> bool:
        up = {w.number for w in self.serving() if w.state == UP}
        return up.issuperset(range(1, self.target + 1))

    def check_ready(self) -> None:
        if self.ready or self.reload is not None or not self.all_up():
            return
        self.ready = True
        previous = upgraded_from()
        notify(f"MAINPID={self.pid}\nREADY=1" if previous else "READY=1")
        if previous:
            log.info("upgrade: serving; send TERM to the old master (pid %s)", previous)

    # -- upgrade (USR2) and the pid file ---------------------------------------------------------------
    def move_pidfile(self, suffix: str) -> None:
        """Rename the pid file to its name plus `suffix` (or back to its own name when `suffix` is "")."""
        if not self.pidfile:
            return
        base = self.pidfile.removesuffix(OLD_SUFFIX)
        target = base + suffix
        try:
            os.replace(self.pidfile, target)
            self.pidfile = target
        except OSError as exc:
            log.warning("cannot rename the pid file %s: %s", self.pidfile, exc)

    def upgrade_failed(self, status: int) -> None:
        log.error(
            "USR2: the new master (pid %s) exited (%s); this master keeps serving",
            self.upgrade_pid,
            describe_exit(os.waitstatus_to_exitcode(status)),
        )
        self.upgrade_pid = None
        self.move_pidfile("")
        self.reopen_control()
        set_title("master", self.name)

    def reopen_control(self) -> None:
        """The new master of a failed upgrade bound the control socket's path and removed it as it exited:
        bind it again, so `ehttpd status` reaches this master."""
        for endpoint in [e for e in self.endpoints if isinstance(e, ControlServer)]:
            self.endpoints.remove(endpoint)
            endpoint.close()  # leaves the path alone unless the file there is still its own
        self.open_control()

    # -- stopping --------------------------------------------------------------------------------------
    def begin_stop(self, graceful: bool) -> None:
        if self.stopping and (graceful or self.stop_fast):
            return
        if not self.stopping:
            notify("STOPPING=1")
            if self.listeners is not None:
                # New connections are refused once the workers drop theirs too (they do on TERM).
                self.listeners.close(unlink=self.may_unlink())
        self.stopping = True
        self.stop_fast = not graceful
        wait = self.settings.graceful_timeout + 1.0 if graceful else FAST_STOP
        self.stop_deadline = time.monotonic() + wait
        for child in self.workers.values():
            if not child.killed:
                child.send(signal.SIGTERM if graceful else signal.SIGQUIT)
                child.state = KILLED if child.state == KILLED else DRAINING
                child.deadline = self.stop_deadline

    def check_stopped(self, now: float) -> None:
        if not self.workers:
            self.done = True
        elif now >= self.stop_deadline:
            for child in self.workers.values():
                if not child.killed:
                    log.warning("worker %d (pid %d) still runs: SIGKILL", child.number, child.pid)
                    self.kill_now(child)
            if now >= self.stop_deadline + 2.0:
                log.error("workers %s did not exit after SIGKILL", sorted(self.workers))
                self.done = True

    def may_unlink(self) -> bool:
        """Remove our unix socket files at exit, unless another master of an upgrade serves on them."""
        previous = upgraded_from()
        return self.upgrade_pid is None and (previous is None or str(os.getppid()) != previous)

    def cleanup(self) -> None:
        for child in self.workers.values():
            child.send(signal.SIGKILL)
        if self.listeners is not None:
            self.listeners.close(unlink=self.may_unlink())
        for endpoint in self.endpoints:
            endpoint.close()
        if self.pidfile:
            pidfile.remove_if_ours(self.pidfile, self.pid)


def run(
    settings: Settings,
    reload_settings: Callable[[], Settings] | None = None,
    early_signals: list[int] | None = None,
) -> int:
    """Serve with a master and forked workers until stopped; the exit status for the launcher.

    `reload_settings`, when given, is called on HUP to re-read the settings (config file, environment);
    `early_signals` came before the master's handlers were in place, and are acted on first.
    """
    return Master(settings, reload_settings, early_signals).run()
