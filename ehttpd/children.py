"""The master's record of its worker processes: forking one, signalling it, sampling it, how it ended."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

from .heartbeat import Heartbeat
from .workerproc import BOOT_ERROR, WorkerSpec, run_worker

BOOTING, UP, DRAINING, KILLED = "booting", "up", "draining", "killed"


@dataclass(eq=False)
class Child:
    """One worker process as the master sees it."""

    pid: int
    number: int  # its slot: the N of "worker N" (a successor takes its predecessor's number)
    generation: int  # each HUP starts a new generation
    heartbeat: Heartbeat
    max_requests: int  # --max-requests plus this worker's own jitter; 0 = never
    started: float = field(default_factory=time.monotonic)
    state: str = BOOTING
    successor: int | None = None  # pid of the worker that replaces this one once it is up
    reason: str = ""  # why it is being replaced
    deadline: float = 0.0  # when a draining or aborted worker gets SIGKILL
    killed: bool = False  # SIGKILL sent
    memory_strikes: int = 0  # samples in a row over --max-worker-memory
    rss: int = 0
    cpu: float = 0.0
    process: psutil.Process | None = None

    def send(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass  # exited already; reaped on the next round

    def sample(self, memory_limit: int) -> None:
        """RSS and CPU % (since the previous sample) from psutil; count the samples over `memory_limit`."""
        try:
            if self.process is None:
                self.process = psutil.Process(self.pid)
                self.process.cpu_percent(None)
            self.rss = self.process.memory_info().rss
            self.cpu = self.process.cpu_percent(None)
        except psutil.Error:
            return
        over = memory_limit and self.state == UP and self.rss > memory_limit
        self.memory_strikes = self.memory_strikes + 1 if over else 0

    def row(self, now: float) -> dict[str, Any]:
        """This worker in the status view."""
        return {
            "number": self.number,
            "pid": self.pid,
            "generation": self.generation,
            "state": self.state,
            "age": now - self.started,
            "requests": self.heartbeat.requests,
            "rss_mb": self.rss / 2**20,
            "cpu_percent": self.cpu,
        }


def fork_blocked(handled: Iterable[int]) -> tuple[int, set[signal.Signals]]:
    """fork() with the master's signals blocked across it, so that none reaches the child before it has
    reset their handlers; returns the pid and the mask to restore. Raises OSError when fork fails."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    return pid, blocked


def fork_worker(spec: WorkerSpec, handled: Iterable[int], in_child: Callable[[], None]) -> int:
    """Fork a worker running `spec` (see fork_blocked). Raises OSError when fork fails."""
    pid, blocked = fork_blocked(handled)
    if pid == 0:
        in_child()
        run_worker(spec, blocked)  # never returns
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def describe_exit(code: int) -> str:
    """os.waitstatus_to_exitcode() in words: "exit status 0", "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}" + (" (the app could not be loaded)" if code == BOOT_ERROR else "")
