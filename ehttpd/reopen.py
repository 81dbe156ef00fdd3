"""Reopen log files (SIGUSR1), so logrotate can move them away and the server writes to new ones."""

from __future__ import annotations

import logging
from collections.abc import Callable

_reopeners: list[Callable[[], None]] = []


def register_reopener(reopen: Callable[[], None]) -> None:
    """Have `reopen` called on USR1 too (the access log writes to its own descriptor, not via logging)."""
    _reopeners.append(reopen)


def reopen_log_files() -> int:
    """Reopen every logging.FileHandler and registered log of this process; returns how many."""
    handlers = set(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handlers.update(getattr(logger, "handlers", ()))
    count = 0
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            with handler.lock:  # type: ignore[union-attr]
                old = handler.stream
                handler.stream = handler._open()
                if old is not None:
                    old.close()
            count += 1
    for reopen in _reopeners:
        reopen()
        count += 1
    return count
