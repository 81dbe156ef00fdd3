"""`ehttpd status`: answered by the master itself on its control socket (the pid file only finds it).

Real masters, real `python -m ehttpd status` processes, real unix sockets and signals.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat

from .helpers import run_ehttpd
from .masterkit import Master, get, wait_until


def ask(path: str, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_status_shows_every_worker_with_its_requests_connections_and_threads(tmp_path):
    master = Master("native_app:app", "--workers", "2", "--threads", "3", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        for _ in range(12):
            assert get(master.port)[0] == 200
        slow = http.client.HTTPConnection("127.0.0.1", master.port, timeout=10)
        slow.request("GET", "/sleep?ms=1500")  # one busy thread and one open connection while it runs
        try:
            assert wait_until(lambda: sum(w["busy_threads"] for w in master.status()["workers"]) == 1, 2), (
                master.status()
            )
            table = run_ehttpd("status", "--pid", str(master.pidfile))
            as_json = run_ehttpd("status", "--pid", str(master.pidfile), "--json")
            assert slow.getresponse().read() == b"slept\n"
        finally:
            slow.close()
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].startswith(f"master {master.pid} [native_app:app]")
        assert lines[1].split() == [
            "worker", "pid", "state", "age", "requests", "rss", "MB", "cpu", "%", "conns", "busy",
        ]  # fmt: skip
        rows = [line.split() for line in lines[2:]]
        assert {int(row[1]) for row in rows} == workers
        assert sum(int(row[4]) for row in rows) in (12, 13)  # the slow request may be counted already
        assert sum(int(row[7]) for row in rows) == 1  # its open connection
        assert sorted(row[8] for row in rows) == ["0/3", "1/3"]  # its busy thread, of 3 per worker
        assert as_json.returncode == 0, as_json.stderr
        view = json.loads(as_json.stdout)
        assert view["pid"] == master.pid and view["target"] == 2
        assert {w["pid"] for w in view["workers"]} == workers
        for row in view["workers"]:
            assert row["state"] == "up" and row["threads"] == 3 and row["rss_mb"] > 1
            assert {"age", "cpu_percent", "open_connections", "busy_threads", "requests"} <= set(row)
        assert wait_until(lambda: sum(w["requests"] for w in master.status()["workers"]) == 13, 2)
    finally:
        master.stop()


def test_the_control_socket_is_private_answers_only_status_and_goes_with_the_master(tmp_path):
    master = Master("hello:app", "--workers", "1", tmp=tmp_path).start()
    path = str(master.pidfile) + ".sock"
    try:
        master.wait_workers(1)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert json.loads(ask(path, b'{"cmd": "status"}\n'))["pid"] == master.pid
        assert json.loads(ask(path, b""))["pid"] == master.pid  # an empty request means status
        assert "error" in json.loads(ask(path, b'{"cmd": "reboot"}\n'))
        assert "error" in json.loads(ask(path, b"not json\n"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
            mute.connect(path)  # says nothing: the master serves others meanwhile, then drops it
            assert master.status()["pid"] == master.pid
            assert get(master.port)[0] == 200
            mute.settimeout(5)
            assert mute.recv(10) == b""
        master.signal(signal.SIGTERM)
        assert master.proc.wait(10) == 0
        assert not os.path.exists(path)
        gone = run_ehttpd("status", "--pid", str(master.pidfile))
        assert gone.returncode == 1 and "pid file" in gone.stderr
    finally:
        master.stop()


def test_a_stale_control_socket_of_a_killed_master_is_replaced(tmp_path):
    first = Master("hello:app", "--workers", "1", tmp=tmp_path).start()
    try:
        first.wait_workers(1)
        first.signal(signal.SIGKILL)  # no cleanup: the socket file stays behind
        first.proc.wait(5)
    finally:
        first.stop()
    assert os.path.exists(str(first.pidfile) + ".sock")
    second = Master("hello:app", "--workers", "1", tmp=tmp_path).start()
    try:
        second.wait_workers(1)
        status = run_ehttpd("status", "--pid", str(second.pidfile), "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["pid"] == second.pid
    finally:
        second.stop()


def test_control_socket_setting_moves_the_socket(tmp_path):
    path = tmp_path / "ctl.sock"
    master = Master("hello:app", "--workers", "1", "--control-socket", str(path), tmp=tmp_path)
    master.start()
    try:
        assert wait_until(path.exists, 5)
        assert not os.path.exists(str(master.pidfile) + ".sock")
        status = run_ehttpd("status", "--pid", str(master.pidfile), "--socket", str(path))
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith(f"master {master.pid} ")
    finally:
        master.stop()
