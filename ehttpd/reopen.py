"""Reopen log files (SIGUSR1), so logrotate can move them away and the server writes to new ones."""

from __future__ import annotations

import logging
from collections.abc import Callable

_reopeners: list[Callable[[], None]] = []


def register_reopener(reopen: Callable[[], None]) -> None:
    """Have `reopen` called on USR1 too (the access log writes to its own descriptor, not via logging)."""
    _reopeners.append(reopen)


def reopen_log_files() -> int:
    """Reopen every logging.FileHandler and registered log of this process; returns how many.

    A log that cannot be reopened (its directory gone, no descriptor left) keeps its old file, with an
    error logged: a failed USR1 must not take the process, and its requests, down.
    """
    handlers = set(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handlers.update(getattr(logger, "handlers", ()))
    count = 0
    failures = []
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            try:
                with handler.lock:  # type: ignore[union-attr]
                    new = handler._open()
                    old, handler.stream = handler.stream, new
                    if old is not None:
                        old.close()
            except OSError as exc:
                failures.append(exc)
                continue
            count += 1
    for reopen in _reopeners:
        try:
            reopen()
        except OSError as exc:
            failures.append(exc)
            continue
        count += 1
    for exc in failures:  # logged once the handlers are in place, to the old file if need be
        logging.getLogger("ehttpd.error").error(
            "USR1: cannot reopen a log file, writing on to the old one: %s", exc
        )
    return count
