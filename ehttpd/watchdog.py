"""--request-timeout inside a worker: find one request that has run too long, and the stack of its thread.

The worker notes which connection each pool thread serves (`Worker.serving`). On every tick the watchdog
samples them: a thread still on the same connection and the same request number (`conn.requests` counts
the requests begun on it) as at the previous samples, and not reading a new request head, is still in
that request. This costs the hot path nothing per request.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any


class StuckRequests:
    """Which pool threads have run one request for longer than `timeout` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.serving: dict[int, Any] = {}  # thread ident -> the connection it serves (the worker's)
        self._seen: dict[int, tuple[Any, int, float]] = {}  # ident -> (connection, request number, since)

    def check(self, now: float) -> list[tuple[int, float]]:
        """(thread ident, seconds in its request) of every thread over the timeout."""
        seen: dict[int, tuple[Any, int, float]] = {}
        stuck = []
        for ident, conn in list(self.serving.items()):
            if getattr(conn, "head_started", None) is not None:
                continue  # reading the next request head: bounded by the header timeout, not ours
            number = conn.requests
            previous = self._seen.get(ident)
            since = previous[2] if previous and previous[0] is conn and previous[1] == number else now
            seen[ident] = (conn, number, since)
            if number and now - since > self.timeout:
                stuck.append((ident, now - since))
        self._seen = seen
        return stuck


def thread_stack(ident: int) -> str:
    """The name and current stack of thread `ident`, for the error log."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    frame = sys._current_frames().get(ident)
    stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (thread ended)\n"
    return f"thread {names.get(ident, ident)}:\n{stack}"
