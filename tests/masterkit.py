"""Tools for the master's end-to-end tests: a master process, client load that counts failures, polling.

The load is real clients (http.client) in threads, keep-alive or one connection per request. A request
counts as failed when it gets no complete 200 response, with one exception that every HTTP client makes
(RFC 9112 §9.3.1, urllib3, Go's net/http, browsers): an idempotent request sent on a *reused* keep-alive
connection that the server closed meanwhile, seeing no byte of a response, is retried once on a new
connection. Such retries are counted apart (`retried`), so a test can show them.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil

from ehttpd.controlsock import query

from .helpers import ServerProcess

MODULE = "ehttpd"  # the launcher, which hands its Settings to ehttpd.master.run
NOT_ANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Master(ServerProcess):
    """A master process (`python -m ehttpd APP ARGS --bind 127.0.0.1:PORT`) with a pid file."""

    def __init__(self, app: str, *args: str, tmp: Path, **kwargs) -> None:
        self.pidfile = tmp / "master.pid"
        super().__init__(app, *args, "--pid", str(self.pidfile), log_path=tmp / "master.log", **kwargs)
        if MODULE != "ehttpd":
            self.argv[2] = MODULE

    def status(self) -> dict:
        """The master's live status view, asked on its control socket (next to the pid file)."""
        return query(str(self.pidfile) + ".sock", {"cmd": "status"}, timeout=2.0)

    def workers(self, pid: int | None = None) -> list[psutil.Process]:
        """The live worker processes of this master (or of master `pid`), by their process titles."""
        try:
            children = psutil.Process(pid or self.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [p for p in children if _title(p).startswith("ehttpd: worker") and _running(p)]

    def worker_pids(self, pid: int | None = None) -> set[int]:
        return {p.pid for p in self.workers(pid)}

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        found = wait_until(lambda: re.search(pattern, self.log()), timeout)
        assert found, f"{pattern!r} not in the log within {timeout}s:\n{self.log()[-3000:]}"
        return found

    def wait_workers(self, count: int, timeout: float = 10.0) -> set[int]:
        """Wait until exactly `count` workers run, all up (their heartbeat seen by the master)."""

        def ready() -> set[int] | None:
            pids = self.worker_pids()
            if len(pids) != count:
                return None
            try:
                up = {w["pid"] for w in self.status()["workers"] if w["state"] == "up"}
            except (OSError, ValueError):
                return None
            return pids if pids <= up else None

        pids = wait_until(ready, timeout)
        assert pids, f"not {count} workers up within {timeout}s: {self.worker_pids()}\n{self.log()[-3000:]}"
        return pids


def _title(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05):
    """The first truthy value of `predicate()` within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def get(port: int, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    """One request on its own connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


class Load:
    """`threads` clients sending GET `path` back to back until `stop()`; every response is checked."""

    def __init__(self, port: int, threads: int = 8, mode: str = "mixed", path: str = "/") -> None:
        self.port = port
        self.path = path
        self.modes = [
            ("keep-alive" if i % 2 == 0 else "close") if mode == "mixed" else mode for i in range(threads)
        ]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.retried = 0
        self.failures: list[str] = []
        self.bodies: Counter[str] = Counter()
        self.threads = [threading.Thread(target=self._client, args=(m,), daemon=True) for m in self.modes]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> Load:
        self.stopping.set()
        for thread in self.threads:
            thread.join(15)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"
        return self

    def wait_ok(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` more requests have succeeded."""
        target = self.ok + count
        assert wait_until(lambda: self.ok >= target, timeout), f"load stalled: {self.summary()}"

    def summary(self) -> str:
        failed = len(self.failures)
        return f"{self.ok} ok, {failed} failed, {self.retried} retried; failures: {self.failures[:5]}"

    def _client(self, mode: str) -> None:
        keep = mode == "keep-alive"
        headers = {} if keep else {"Connection": "close"}
        conn: http.client.HTTPConnection | None = None
        used = False  # a response came on `conn` already
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                used = False
            try:
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read().decode()
                status = resp.status
            except NOT_ANSWERED as exc:
                conn.close()
                conn = None
                if used:  # the server closed a reused connection before answering: retry once
                    with self.lock:
                        self.retried += 1
                    self._once(headers)
                else:
                    self._fail(f"{type(exc).__name__}: {exc}")
                continue
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                self._fail(f"{type(exc).__name__}: {exc}")
                continue
            self._record(status, body)
            used = True
            if not keep or resp.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _once(self, headers: dict) -> None:
        try:
            status, body = get(self.port, self.path)
        except (OSError, http.client.HTTPException) as exc:
            self._fail(f"retry: {type(exc).__name__}: {exc}")
            return
        self._record(status, body)

    def _record(self, status: int, body: str) -> None:
        with self.lock:
            if status == 200:
                self.ok += 1
                self.bodies[body] += 1
            else:
                self.failures.append(f"status {status}: {body[:80]!r}")

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything `sock` receives until the peer closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def refused(port: int) -> bool:
    """True when a connection to `port` is refused (nothing listens there any more)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def gone(pids: set[int]) -> bool:
    """True when none of `pids` runs (zombies count as gone)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def signal_pid(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
