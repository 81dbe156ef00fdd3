"""The access log: one line per request, Apache combined by default, a `%(atom)s` format, or JSON.

Each line goes out in one os.write() on an O_APPEND descriptor, so lines from many threads and worker
processes never interleave. USR1 reopens the file by dup2()-ing a fresh descriptor onto the same number:
a thread writing at that moment writes whole into the old file or the new one, never into a closed one.

Atoms (gunicorn's names): h remote address, l '-', u user ('-'), t time [10/Oct/2000:13:55:36 +0000],
r request line, m method, U path, q query string, H protocol, s status, B body bytes, b body bytes or '-',
f referer, a user agent, T seconds, M milliseconds, D microseconds, L seconds with decimals, p pid,
{name}i a request header, {name}o a response header.
"""

from __future__ import annotations

import json
import os
import re
import time

from .reopen import register_reopener

COMBINED = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
_HEADER_ATOM = re.compile(r"%\(\{([^}]+)\}([io])\)s")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')


def _escape(text: str) -> str:
    """Quote-safe and one line, as Apache escapes: \\" and \\xhh."""
    return _UNSAFE.sub(lambda m: "\\" + m.group() if m.group() in '"\\' else f"\\x{ord(m.group()):02x}", text)


class AccessLog:
    """Writes access log lines to a file ("-" is stdout)."""

    def __init__(self, path: str, fmt: str = "combined") -> None:
        self.path = path
        self.json = fmt == "json"
        self.format = COMBINED if fmt in ("combined", "json") else fmt
        self.header_atoms = _HEADER_ATOM.findall(self.format)
        self.fd = 1 if path == "-" else self._open()
        self.pid = os.getpid()
        register_reopener(self.reopen)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen(self) -> None:
        if self.path == "-":
            return
        fresh = self._open()
        os.dup2(fresh, self.fd)  # atomic: writers keep using self.fd
        os.close(fresh)

    def log(
        self,
        peer,
        method: str,
        target: str,
        version: str,
        request_headers: list[tuple[str, str]],
        status: int,
        response_headers,
        body_bytes: int,
        seconds: float,
    ) -> None:
        atoms = self.atoms(
            peer, method, target, version, request_headers, status, response_headers, body_bytes, seconds
        )
        line = json.dumps(atoms, separators=(",", ":")) if self.json else self.format % atoms
        os.write(self.fd, (line + "\n").encode("utf-8", "backslashreplace"))

    def atoms(
        self, peer, method, target, version, request_headers, status, response_headers, body_bytes, seconds
    ):
        path, _, query = target.partition("?")
        req = {}
        for name, value in request_headers:
            req.setdefault(name, value)
        host = peer[0] if isinstance(peer, tuple) else (peer or "-")
        atoms = {
            "h": host,
            "l": "-",
            "u": "-",
            "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime()),
            "r": _escape(f"{method} {target} {version}"),
            "m": method,
            "U": _escape(path),
            "q": _escape(query),
            "H": version,
            "s": status,
            "B": body_bytes,
            "b": body_bytes or "-",
            "f": _escape(req.get("referer", "-")),
            "a": _escape(req.get("user-agent", "-")),
            "T": int(seconds),
            "M": int(seconds * 1000),
            "D": int(seconds * 1_000_000),
            "L": f"{seconds:.6f}",
            "p": self.pid,
        }
        for name, side in self.header_atoms:
            if side == "i":
                value = req.get(name.lower(), "-")
            else:
                value = response_headers.get(name, "-") if response_headers is not None else "-"
            atoms[f"{{{name}}}{side}"] = _escape(value)
        if self.json:
            atoms["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            del atoms["t"]
        return atoms


class AccessRecord:
    """What the access log needs of one request, gathered while it is served."""

    __slots__ = ("head", "head_len", "mark", "resp", "started")

    def __init__(self, head, sent_before: int) -> None:
        self.head = head
        self.started = time.perf_counter()
        self.mark = sent_before
        self.resp = None
        self.head_len = 0

    def response(self, resp, head_len: int) -> None:
        self.resp = resp
        self.head_len = head_len

    def write(self, log: AccessLog, conn) -> None:
        head, resp = self.head, self.resp
        if resp is None:  # the response never got as far as its head
            return
        body_bytes = max(0, conn.sent - self.mark - self.head_len)
        log.log(
            conn.peer,
            head.method,
            head.target,
            head.version,
            head.headers,
            resp.status,
            resp.headers,
            body_bytes,
            time.perf_counter() - self.started,
        )
