"""`ehttpd reload|stop|status --pid FILE`: control a running master, and show its status view.

reload and stop are signals (HUP, TERM) to the pid in the pid file. status asks the master itself, on its
control socket (`FILE.sock` next to the pid file unless --control-socket / --socket say otherwise; a unix
socket of mode 0600, see controlsock.py), for its live view: per worker its pid, state, age, requests
served, open connections and busy threads (from the worker's heartbeat page), RSS and CPU (psutil, sampled
by the master about once a second).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import psutil

from .controlsock import query
from .pidfile import read as read_pid
from .pidfile import runs_ehttpd

if TYPE_CHECKING:
    from .config import Settings


def control_path(settings: Settings) -> str | None:
    """Where the master listens for `ehttpd status`: --control-socket, else next to the pid file."""
    if settings.control_socket:
        return settings.control_socket
    return settings.pidfile + ".sock" if settings.pidfile else None


def format_status(view: dict[str, Any]) -> str:
    """The status view as a table for people."""
    lines = [
        f"master {view['pid']} [{view['name']}]  up {_age(view['age'])}  generation {view['generation']}  "
        f"workers {view['target']}{'  (reloading)' if view['reloading'] else ''}"
        f"{'  (stopping)' if view['stopping'] else ''}",
        f"{'worker':>6} {'pid':>8} {'state':<10} {'age':>8} {'requests':>10} {'rss MB':>8} {'cpu %':>6} "
        f"{'conns':>6} {'busy':>9}",
    ]
    for w in view["workers"]:
        gauges = ""
        if "threads" in w:  # open connections, busy / all threads (from the worker's heartbeat page)
            gauges = f" {w['open_connections']:>6} {w['busy_threads']}/{w['threads']:<4}".rstrip()
        lines.append(
            f"{w['number']:>6} {w['pid']:>8} {w['state']:<10} {_age(w['age']):>8} {w['requests']:>10} "
            f"{w['rss_mb']:>8.1f} {w['cpu_percent']:>6.1f}{gauges}"
        )
    restarts = ", ".join(f"{reason} {n}" for reason, n in sorted(view.get("restarts", {}).items()))
    if restarts:
        lines.append(f"restarts: {restarts}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ehttpd", description="Control a running ehttpd master.")
    parser.add_argument("command", choices=("reload", "stop", "status"))
    parser.add_argument("-p", "--pid", required=True, help="the master's pid file (--pid of the server)")
    parser.add_argument("--json", action="store_true", help="status: print the JSON view")
    parser.add_argument(
        "--socket", "--control-socket", help="status: the master's control socket (default: PIDFILE.sock)"
    )
    parser.add_argument(
        "--wait", type=float, default=60.0, help="stop: seconds to wait for the master to exit (0: do not)"
    )
    return parser


def main(argv: list[str]) -> int:
    """Exit status 0 on success, 1 when the master is not running or did not do what was asked."""
    args = build_parser().parse_args(argv)
    try:
        pid = read_pid(args.pid)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read the pid file {args.pid}: {exc}")
    if not _alive(pid):
        return _fail(f"no master is running with pid {pid} (from {args.pid})")
    if runs_ehttpd(pid) is False:  # a stale pid file's pid, now another program's: never signal it
        return _fail(f"pid {pid} (from {args.pid}) is not an ehttpd master; the pid file is stale")
    if args.command == "reload":
        os.kill(pid, signal.SIGHUP)
        return 0
    if args.command == "stop":
        os.kill(pid, signal.SIGTERM)
        return 0 if _wait_exit(pid, args.wait) else _fail(f"master {pid} still runs after {args.wait:g}s")
    return _status(pid, args.socket or args.pid + ".sock", args.json)


def _status(pid: int, path: str, as_json: bool) -> int:
    try:
        view = query(path, {"cmd": "status"})
    except (OSError, ValueError) as exc:
        return _fail(f"master {pid} does not answer on its control socket {path}: {exc}")
    if view.get("pid") != pid:
        return _fail(f"the control socket {path} belongs to master {view.get('pid')}, not {pid}")
    print(json.dumps(view, indent=2) if as_json else format_status(view))
    return 0


def _alive(pid: int) -> bool:
    """True while `pid` runs (an exited master waiting for its parent to reap it does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _fail(message: str) -> int:
    print(f"ehttpd: error: {message}", file=sys.stderr)
    return 1
