"""A fixed pool of threads serving connections handed to it by the worker's poller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any


class ThreadPool:
    """`size` daemon threads each running `run(item)` for items submitted to one FIFO queue."""

    def __init__(self, size: int, run: Callable[[Any], None], name: str = "ehttpd") -> None:
        self.size = size
        self.run = run
        self.name = name
        self.queue: SimpleQueue = SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.busy: dict[int, float] = {}  # thread ident -> when its current item started

    def start(self) -> None:
        for i in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def submit(self, item: Any) -> None:
        self.queue.put(item)

    def work_waiting(self) -> bool:
        """True when submitted items wait and every thread is busy, so none will take them soon."""
        return len(self.busy) >= self.size and not self.queue.empty()

    @property
    def busy_count(self) -> int:
        return len(self.busy)

    def _loop(self) -> None:
        ident = threading.get_ident()
        get = self.queue.get
        run = self.run
        busy = self.busy
        while True:
            item = get()
            if item is None:
                return
            busy[ident] = time.monotonic()
            try:
                run(item)
            finally:
                del busy[ident]

    def stop(self, timeout: float | None = None) -> bool:
        """Let the threads finish their items and end; True if all ended within `timeout`."""
        for _ in self.threads:
            self.queue.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self.threads)
