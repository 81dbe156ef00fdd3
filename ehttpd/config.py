"""Settings: every option, its type, its default and what it means, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from .parser import Limits


@dataclass(slots=True)
class Settings:
    """The effective settings of a server; the launcher resolves flags, files and environment into one."""

    # -- what to serve ------------------------------------------------------------------------------------
    app: str = ""  # module:app, module:factory() or module
    chdir: str | None = None  # directory the app is imported from (default: the current one)
    interface: str = "auto"  # auto | native | raw | wsgi
    root_path: str = ""  # WSGI SCRIPT_NAME
    name: str = ""  # the [app] in process titles; default: the app spec

    # -- where ----------------------------------------------------------------------------------------------
    bind: list[str] = field(default_factory=lambda: ["127.0.0.1:8000"])  # host:port, [v6]:port, unix:, fd://
    backlog: int = 2048
    reuse_port: bool = False  # one SO_REUSEPORT socket per worker slot, all held by the master
    unix_socket_mode: int | None = None  # chmod of unix: sockets, e.g. 0o660

    # -- processes ------------------------------------------------------------------------------------------
    workers: int = 0  # worker processes; 0 = the number of CPUs
    threads: int = 32  # pool threads per worker process
    preload: bool = False  # import the app in the master before forking (HUP cannot reload code then)
    timeout: float = 30.0  # heartbeat: a worker whose main loop is silent this long is replaced
    request_timeout: float = 0.0  # one request running longer than this recycles its worker; 0 = off
    graceful_timeout: float = 30.0  # seconds in-flight requests get on TERM / HUP / recycling
    max_requests: int = 0  # recycle a worker after this many requests; 0 = never
    max_requests_jitter: int = 0  # random extra requests per worker, so workers do not recycle together
    max_worker_memory: int = 0  # MB of RSS; a worker above it for several samples is recycled; 0 = off
    pidfile: str | None = None
    config: str | None = None  # TOML file with these settings

    # -- connections ----------------------------------------------------------------------------------------
    max_connections: int = 1000  # connections held open per worker process; beyond it accepting pauses
    header_timeout: float = 10.0  # seconds to receive a complete request head once it started (408)
    keepalive_timeout: float = 5.0  # seconds an idle keep-alive connection is kept
    body_timeout: float = 30.0  # seconds without progress while reading a request body (408)
    send_timeout: float = 30.0  # seconds without progress while sending a response
    keepalive_grace: float = 0.05  # seconds a pool thread waits on its idle connection before parking it
    max_drain: int = 65536  # unread request-body bytes drained to keep a connection; beyond, close
    linger: float = 1.0  # seconds to drain a client's bytes after an error before closing
    server_header: str = "ehttpd"
    limits: Limits = field(default_factory=Limits)

    # -- logging --------------------------------------------------------------------------------------------
    log_level: str = "info"
    error_log: str = "-"  # file path or - for stderr
    access_log: str | None = None  # file path or - for stdout; None = off
    access_log_format: str = "combined"  # combined | json | a format string with %(atom)s
