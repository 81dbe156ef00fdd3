"""Settings: every option, its type, its default and what it means, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from .parser import Limits


@dataclass(slots=True)
class Settings:
    """The effective settings of a server; the launcher resolves flags, files and environment into one."""

    bind: list[str] = field(default_factory=lambda: ["127.0.0.1:8000"])
    threads: int = 32  # pool threads per worker process
    max_connections: int = 1000  # connections held open per worker process; beyond it accepting pauses
    header_timeout: float = 10.0  # seconds to receive a complete request head once it started (408)
    keepalive_timeout: float = 5.0  # seconds an idle keep-alive connection is kept
    body_timeout: float = 30.0  # seconds without progress while reading a request body (408)
    send_timeout: float = 30.0  # seconds without progress while sending a response
    keepalive_grace: float = 0.05  # seconds a pool thread waits on its idle connection before parking it
    max_drain: int = 65536  # unread request-body bytes drained to keep a connection; beyond, close
    linger: float = 1.0  # seconds to drain a client's bytes after an error before closing
    backlog: int = 2048
    server_header: str = "ehttpd"
    interface: str = "auto"  # auto | native | raw | wsgi
    root_path: str = ""  # WSGI SCRIPT_NAME
    limits: Limits = field(default_factory=Limits)
