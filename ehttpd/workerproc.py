"""The life of one forked worker process: load the app, serve, beat, and stop when told or orphaned.

Signals in a worker: TERM stops gracefully (stop accepting, finish in-flight requests within
--graceful-timeout); INT and QUIT stop at once; USR1 reopens log files; ABRT (sent by the master's heartbeat
check) dumps the stack of every thread through faulthandler, then aborts. The master's other signals are
back to their defaults. The main loop's tick (every 0.25 s) writes the heartbeat, notices a dead master,
and runs the --request-timeout watchdog.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import NoReturn

from .config import Settings
from .heartbeat import METRICS_AT, Heartbeat
from .loader import AppLoadError, load_app
from .metrics import RequestMetrics, publish
from .proctitle import set_title
from .reopen import reopen_log_files
from .watchdog import StuckRequests, thread_stack
from .worker import Worker, install_signal_handlers

log = logging.getLogger("ehttpd.error")

BOOT_ERROR = 3  # exit status of a worker whose app could not be loaded
MASTER_SIGNALS = (
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
)


@dataclass
class WorkerSpec:
    """What a forked worker needs from the master."""

    number: int
    name: str
    settings: Settings
    listeners: list[socket.socket]
    heartbeat: Heartbeat
    master_pid: int
    app: object | None = None  # set with --preload: imported once in the master


def run_worker(spec: WorkerSpec, blocked: set[signal.Signals]) -> NoReturn:
    """The forked child: serve, then leave with os._exit, never returning into the master's code."""
    code = 1
    try:
        _reset_signals(blocked)
        code = _serve(spec)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        log.exception("worker %d failed", spec.number)
        spec.heartbeat.report_boot_error(f"{type(exc).__name__}: {exc}")  # read if it was not up yet
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _reset_signals(blocked: set[signal.Signals]) -> None:
    """Undo the master's signal set-up; the master blocked its signals around fork, so none was lost."""
    signal.set_wakeup_fd(-1)
    for sig in MASTER_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)  # TERM, INT and QUIT simply end a worker still booting
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the worker's own handler is in place
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _serve(spec: WorkerSpec) -> int:
    settings = spec.settings
    set_title(f"worker {spec.number}", spec.name)
    faulthandler.enable(all_threads=True)  # SIGABRT from the master's heartbeat check logs every stack
    tick = Tick(spec)
    signal.signal(signal.SIGUSR1, tick.request_reopen)
    app = spec.app
    if app is None:
        try:
            app = load_app(settings.app, settings.chdir)
        except AppLoadError as exc:
            spec.heartbeat.report_boot_error(str(exc))
            log.error("worker %d cannot load the app: %s", spec.number, exc)
            return BOOT_ERROR
    worker = Worker(app, spec.listeners, settings, on_tick=tick, name=f"worker{spec.number}")
    attach = getattr(worker.protocol, "attach_metrics", None)  # the raw interface has no responses to count
    if settings.metrics_bind and attach is not None:
        tick.metrics = RequestMetrics()
        attach(tick.metrics)
    if tick.stuck is not None:
        tick.stuck.serving = worker.serving  # which connection each pool thread serves, kept by the worker
    install_signal_handlers(worker, settings.graceful_timeout)
    tick.publish(worker)  # its gauges are in place before the master sees it up
    spec.heartbeat.beat(0, time.monotonic())  # the first beat tells the master this worker is up
    worker.run()
    tick.publish(worker)  # the final counts, read by the master once it has reaped this worker
    return 0


class Tick:
    """Called by the worker's main loop about every 0.25 s."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.reopen = False
        self.draining = False
        self.retiring = False
        timeout = spec.settings.request_timeout
        self.stuck = StuckRequests(timeout) if timeout > 0 else None
        self.metrics: RequestMetrics | None = None  # with --metrics-bind

    def publish(self, worker: Worker) -> None:
        """The gauges and request counters into the heartbeat page, for the status and metrics views."""
        gauges = (worker.open_connections, len(worker.serving), worker.pool.size)
        totals = self.metrics.totals() if self.metrics is not None else None
        publish(self.spec.heartbeat.memory, METRICS_AT, gauges, totals)

    def request_reopen(self, *_: object) -> None:
        self.reopen = True  # done on the next tick, outside the signal handler

    def __call__(self, worker: Worker) -> None:
        spec = self.spec
        now = time.monotonic()
        self.publish(worker)
        spec.heartbeat.beat(worker.state.requests, now)
        if self.reopen:
            self.reopen = False
            reopen_log_files()
        if worker.stop_deadline is None:
            if os.getppid() != spec.master_pid:
                log.warning("worker %d: the master (pid %d) is gone; stopping", spec.number, spec.master_pid)
                worker.stop(spec.settings.graceful_timeout)
            elif self.stuck is not None:
                self.check_requests(worker, now)
        elif not self.draining:  # the worker closed its listeners (Worker._stop_listening)
            self.draining = True
            set_title(f"worker {self.spec.number}", self.spec.name, "draining")

    def check_requests(self, worker: Worker, now: float) -> None:
        assert self.stuck is not None
        stuck = self.stuck.check(now)
        if not stuck or self.retiring:
            return
        self.retiring = True
        limit = self.stuck.timeout
        for ident, age in stuck:
            log.error(
                "worker %d: a request has run %.1fs (--request-timeout %gs); the worker is replaced: once "
                "its successor is up, it takes no new connections and finishes its other requests. Stuck %s",
                self.spec.number,
                age,
                limit,
                thread_stack(ident).rstrip(),
            )
        # The master starts a successor first and then stops this worker, as for --max-requests: stopping
        # here at once left fewer workers accepting (none, when every worker had a stuck request).
        self.spec.heartbeat.ask_retirement()
