"""A fixed set of threads, and which of them are busy serving a connection (and since when)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ThreadPool:
    """`size` daemon threads each running `loop()`; `busy` maps a thread's ident to when its work began."""

    def __init__(self, size: int, loop: Callable[[], None], name: str = "ehttpd") -> None:
        self.size = size
        self.loop = loop
        self.name = name
        self.threads: list[threading.Thread] = []
        self.busy: dict[int, float] = {}

    def start(self) -> None:
        for i in range(self.size):
            thread = threading.Thread(target=self.loop, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def all_busy(self) -> bool:
        return len(self.busy) >= self.size

    @property
    def busy_count(self) -> int:
        return len(self.busy)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to end; True if all ended within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self.threads)
