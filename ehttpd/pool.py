"""The pool's threads, and how many of them may serve at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ThreadPool:
    """`size` daemon threads each running `loop()`."""

    def __init__(self, size: int, loop: Callable[[], None], name: str = "ehttpd") -> None:
        self.size = size
        self.loop = loop
        self.name = name
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.size):
            thread = threading.Thread(target=self.loop, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to end; True if all ended within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self.threads)


class Gate:
    """How many pool threads may serve at once.

    Threads of one process share the GIL, so two threads with work only slow each other down: one thread
    serving every ready connection in turn (an event loop) is the fastest, and the fairest, way through
    fast requests. More threads are only worth it while a serving thread is stalled: blocked in a handler
    (a database call, a sleep), on a slow client, or in a long computation. The worker's main thread counts
    those (`Worker._check_stalls`) and sets `allowed` to one more than that; the others wait here.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.cond = threading.Condition(threading.Lock())
        self.running = 0  # threads inside: serving, or waiting in epoll for work
        self.allowed = 1
        self.open = True

    def enter(self) -> bool:
        """Wait for a place; False once the gate is closed (the worker stops)."""
        with self.cond:
            while self.running >= self.allowed and self.open:
                self.cond.wait()
            if not self.open:
                return False
            self.running += 1
            return True

    def leave(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify()

    def allow(self, count: int) -> None:
        """Let `count` threads in (1 to size); a thread inside over the count steps out when it can."""
        count = max(1, min(self.size, count))
        if count == self.allowed:
            return
        with self.cond:
            more = count - self.allowed
            self.allowed = count
            if more > 0:
                self.cond.notify(more)

    @property
    def crowded(self) -> bool:
        """More threads inside than allowed: one of them should step out."""
        return self.running > self.allowed

    def close(self) -> None:
        with self.cond:
            self.open = False
            self.cond.notify_all()


def thread_blocked(native_id: int) -> bool:
    """Whether a thread of this process is blocked (sleeping in the kernel), not running or runnable.

    Tells a handler waiting on I/O from a thread the scheduler merely preempted; Linux /proc. Where it
    cannot be read, a thread counts as blocked.
    """
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return True
    state = text[text.rindex(b")") + 2 :][:1]  # the field after "(comm)", which may itself hold spaces
    return state != b"R"
