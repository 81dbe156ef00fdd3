"""The access log against real servers: format atoms, JSON lines, and USR1 reopen under load."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

from tests.helpers import ServerProcess


def wait_for_lines(path, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    return lines


def get(port: int, path: str, headers: dict | None = None, method: str = "GET") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_combined_format_by_default(tmp_path):
    log = tmp_path / "access.log"
    with ServerProcess("hello:app", "--workers", "1", "--access-log", str(log)) as server:
        get(server.port, "/a/b?x=1&y=2", {"Referer": "http://ref/", "User-Agent": 'agent "quoted"'})
        get(server.port, "/head", method="HEAD")
        lines = wait_for_lines(log, 2)
    assert len(lines) == 2
    # Each line is written after its response went out, by the thread that served it: any order.
    first, second = sorted(lines, key=lambda line: '"HEAD ' in line)
    assert first.startswith("127.0.0.1 - - [")
    assert '"GET /a/b?x=1&y=2 HTTP/1.1" 200 13 "http://ref/" "agent \\"quoted\\""' in first
    assert '"HEAD /head HTTP/1.1" 200 - ' in second  # no body bytes on HEAD


def test_format_atoms(tmp_path):
    log = tmp_path / "access.log"
    fmt = "%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(D)s|%(p)s|%({x-trace}i)s|%({content-type}o)s"
    with ServerProcess(
        "hello:app", "--workers", "1", "--access-log", str(log), "--access-log-format", fmt
    ) as server:
        get(server.port, "/p?q=1", {"X-Trace": "abc"})
        lines = wait_for_lines(log, 1)
        worker_pids = {c for c in _children(server.pid)}
    method, path, query, proto, status, nbytes, micros, pid, trace, ctype = lines[0].split("|")
    assert (method, path, query, proto, status, nbytes) == ("GET", "/p", "q=1", "HTTP/1.1", "200", "13")
    assert int(micros) >= 0
    assert int(pid) in worker_pids
    assert (trace, ctype) == ("abc", "text/plain")


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def test_json_lines_parse(tmp_path):
    log = tmp_path / "access.json"
    with ServerProcess(
        "hello:app", "--workers", "2", "--access-log", str(log), "--access-log-format", "json"
    ) as server:
        for i in range(20):
            get(server.port, f"/j{i}?n={i}")
        lines = wait_for_lines(log, 20)
    records = [json.loads(line) for line in lines]
    assert len(records) == 20
    assert sorted(r["U"] for r in records) == sorted(f"/j{i}" for i in range(20))
    assert all(r["s"] == 200 and r["B"] == 13 and r["m"] == "GET" for r in records)


def test_usr1_reopen_after_rotation_under_load_loses_no_line(tmp_path):
    log = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    server = ServerProcess("hello:app", "--workers", "2", "--access-log", str(log)).start()
    sent = []
    failures = []
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            path = f"/t{n}-{i}"
            try:
                if get(server.port, path).status == 200:
                    sent.append(path)
            except OSError as exc:
                failures.append(exc)
            i += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.rename(log, rotated)
        server.signal(signal.SIGUSR1)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
        time.sleep(0.5)
    finally:
        stop.set()
        server.stop()
    assert not failures
    old = rotated.read_text().splitlines()
    new = log.read_text().splitlines()
    assert old and new, "lines must land in both the rotated and the reopened file"
    logged = [line.split('"')[1].split(" ")[1] for line in old + new]
    assert sorted(logged) == sorted(sent)  # every request, once, each line whole


def test_a_usr1_whose_log_cannot_be_reopened_keeps_everything_serving(tmp_path):
    # logrotate moved the directory away: the reopen fails, and the processes write on to the old files.
    logs = tmp_path / "logs"
    logs.mkdir()
    with ServerProcess(
        "hello:app",
        "--workers",
        "2",
        "--access-log",
        str(logs / "access.log"),
        "--error-log",
        str(logs / "error.log"),
    ) as server:
        assert get(server.port, "/before").status == 200
        workers = set(_children(server.pid))
        logs.rename(tmp_path / "moved")
        os.kill(server.pid, signal.SIGUSR1)
        moved = tmp_path / "moved"
        deadline = time.monotonic() + 5
        while (moved / "error.log").read_text().count("cannot reopen a log file") < 3:  # master, 2 workers
            assert time.monotonic() < deadline, (moved / "error.log").read_text()[-2000:]
            time.sleep(0.05)
        assert get(server.port, "/after").status == 200
        assert set(_children(server.pid)) == workers  # no worker died
        lines = wait_for_lines(moved / "access.log", 2)
        assert any('"GET /after HTTP/1.1" 200' in line for line in lines)
