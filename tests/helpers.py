"""Start real ehttpd server processes for end-to-end tests, on free ports, and stop them by pid."""

from __future__ import annotations

import os
import signal as signals
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class ServerProcess:
    """`python -m ehttpd APP ARGS... --bind 127.0.0.1:PORT`, with its output captured to a log file."""

    def __init__(
        self,
        app: str,
        *args: str,
        port: int | None = None,
        cwd: Path | None = None,
        env=None,
        bind: bool = True,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.cwd = cwd or APPS
        self.log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"ehttpd-test-{self.port}.log"
        self.argv = [sys.executable, "-m", "ehttpd", app, *args]
        if bind:
            self.argv += ["--bind", f"127.0.0.1:{self.port}"]
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        full_env.update(env or {})
        self.env = full_env
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True, pass_fds: tuple[int, ...] = ()) -> ServerProcess:
        """Start the server; `pass_fds` are inherited (systemd socket activation)."""
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        if wait:
            wait_for_port(self.port, proc=self.proc)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, sig: int = signals.SIGTERM, timeout: float = 15.0) -> int:
        """Stop the server by its pid (then its whole process group, should anything be left)."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        try:
            os.killpg(proc.pid, signals.SIGKILL)  # children that outlived their master
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_ehttpd(*args: str) -> subprocess.CompletedProcess:
    """`python -m ehttpd ARGS` to completion (the control commands), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "ehttpd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def raw_request(port: int, data: bytes, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    """Send raw bytes and return everything the server sends until it closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close:
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)
