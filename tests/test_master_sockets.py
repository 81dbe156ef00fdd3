"""The master's sockets: USR2 upgrade on inherited sockets, balance between workers, --reuse-port, unix and
IPv6 binds, systemd socket activation and sd_notify."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import psutil

from .helpers import free_port
from .masterkit import Load, Master, get, gone, read_until_closed, refused, signal_pid, wait_until


def test_usr2_then_term_to_the_old_master_under_load(tmp_path):
    master = Master("slow:app", "--workers", "2", tmp=tmp_path).start()
    new_master = None
    try:
        old_workers = master.wait_workers(2)
        load = Load(master.port, threads=8).start()
        load.wait_ok(100)
        master.signal(signal.SIGUSR2)
        new_master = wait_until(lambda: _pid_in(master.pidfile, other_than=master.pid), 10)
        assert new_master, master.log()[-3000:]
        assert _pid_in(tmp_path / "master.pid.oldbin") == master.pid
        assert " ".join(psutil.Process(master.pid).cmdline()).strip() == "ehttpd: master [slow:app] (old)"
        assert master.wait_log(r"upgrade: serving; send TERM to the old master", 10)
        new_workers = master.worker_pids(new_master)
        assert len(new_workers) == 2 and not new_workers & old_workers
        load.wait_ok(200)  # both generations serve side by side now
        master.signal(signal.SIGTERM)
        assert master.proc.wait(10) == 0
        assert wait_until(lambda: gone(old_workers), 5)
        served_before = load.bodies.copy()
        load.wait_ok(300)
        load.stop()
        assert not load.failures, load.summary()
        print(load.summary())
        latest = {int(body) for body in load.bodies if load.bodies[body] > served_before[body]}
        assert latest and latest <= new_workers  # (under light load one worker may take every connection)
        assert _pid_in(master.pidfile) == new_master
        assert not (tmp_path / "master.pid.oldbin").exists()
        signal_pid(new_master, signal.SIGTERM)
        assert wait_until(lambda: gone({new_master} | new_workers), 10)
        assert refused(master.port)
    finally:
        if new_master:
            signal_pid(new_master, signal.SIGKILL)
        master.stop()


def _pid_in(path, other_than: int | None = None) -> int | None:
    try:
        with open(path) as file:
            pid = int(file.read())
    except (OSError, ValueError):
        return None
    return pid if pid != other_than else None


def test_two_workers_each_serve_35_to_65_percent_under_wrk(tmp_path):
    """64 wrk connections on one shared listening socket, keep-alive then close; counts from the status."""
    wrk = shutil.which("wrk")
    assert wrk, "this test drives the server with wrk: apt-get install wrk"
    master = Master("slow:app", "--workers", "2", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        counted = _requests_by_worker(master)
        for mode in ("keep-alive", "close"):
            header = ["-H", "Connection: close"] if mode == "close" else []
            url = f"http://127.0.0.1:{master.port}/"
            command = [wrk, "-t2", "-c64", "-d3s", *header, url]
            out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout
            time.sleep(1.2)  # the status view is refreshed once a second
            now = _requests_by_worker(master)
            served = [now[pid] - counted[pid] for pid in sorted(workers)]
            counted = now
            shares = [round(100 * n / sum(served), 1) for n in served]
            rate = out.split("Requests/sec:")[1].split()[0]
            print(f"{mode}: {served} requests per worker, {shares} %, {rate} requests/s")
            assert all(35 <= share <= 65 for share in shares), (mode, served, shares)
        assert master.worker_pids() == workers
    finally:
        master.stop()


def _requests_by_worker(master: Master) -> dict[int, int]:
    return {w["pid"]: w["requests"] for w in master.status()["workers"]}


def test_reuse_port_holds_one_socket_per_worker_slot(tmp_path):
    master = Master("slow:app", "--workers", "2", "--threads", "8", "--reuse-port", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        assert len(_listening(master.pid, master.port)) == 2
        load = Load(master.port, threads=8).start()
        load.wait_ok(300)
        assert {int(body) for body in load.bodies} == workers  # the kernel spreads over both sockets
        master.signal(signal.SIGHUP)
        assert wait_until(lambda: not master.worker_pids() & workers and len(master.worker_pids()) == 2, 5)
        load.wait_ok(300)
        load.stop()
        assert not load.failures, load.summary()
        assert len(_listening(master.pid, master.port)) == 2  # the same two sockets served the new workers
    finally:
        master.stop()


def test_reuse_port_ttou_sends_no_new_connection_to_the_draining_worker(tmp_path):
    # The retired slot's socket must leave the kernel's reuse-port group at once: while the master kept
    # it until the worker exited, about half of the new connections queued on it for the whole drain.
    master = Master("slow:app", "--workers", "2", "--threads", "8", "--reuse-port", tmp=tmp_path).start()
    slow = []
    try:
        workers = master.wait_workers(2)
        for _ in range(8):  # long requests on both workers, so the retired one drains for 4 s
            slow.append(threading.Thread(target=lambda: get(master.port, "/slow?s=4"), daemon=True))
            slow[-1].start()
        assert wait_until(lambda: sum(_established(pid) for pid in workers) >= 8, 5)
        master.signal(signal.SIGTTOU)
        assert wait_until(lambda: "TTOU" in master.log(), 5)
        time.sleep(0.3)  # the master has retired worker 2 and closed its slot's socket
        started = time.monotonic()
        answered = [get(master.port, "/", timeout=3.0)[0] for _ in range(20)]
        assert answered == [200] * 20
        assert time.monotonic() - started < 2.5  # none waited for the draining worker to finish
    finally:
        master.stop()
        for thread in slow:
            thread.join(6)


def _established(pid: int) -> int:
    try:
        conns = psutil.Process(pid).net_connections("tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED)


def _listening(pid: int, port: int) -> list:
    conns = psutil.Process(pid).net_connections("tcp")
    return [c for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


def test_unix_socket_with_mode_and_ipv6_binds(tmp_path):
    path = tmp_path / "ehttpd.sock"
    v6_port = free_port()
    master = Master(
        "slow:app",
        "--workers",
        "1",
        "--bind",
        f"unix:{path}",
        "--unix-socket-mode",
        "660",
        "--bind",
        f"[::1]:{v6_port}",
        tmp=tmp_path,
    ).start()
    try:
        master.wait_workers(1)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(5)
            unix.connect(str(path))
            unix.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(unix).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(("::1", v6_port), timeout=5) as v6:
            v6.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(v6).startswith(b"HTTP/1.1 200 ")
        assert get(master.port)[0] == 200
        master.signal(signal.SIGTERM)
        assert master.proc.wait(10) == 0
        assert not path.exists()  # the socket file the master created is removed
    finally:
        master.stop()


# The systemd side of socket activation: the socket is fd 3, LISTEN_PID is the pid that execs the server.
ACTIVATE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
    "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def test_systemd_socket_activation_and_notify(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    notify_path = str(tmp_path / "notify")
    notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notifications.bind(notify_path)
    notifications.settimeout(10)
    master = Master(
        "slow:app", "--workers", "2", tmp=tmp_path, port=port, bind=False, env={"NOTIFY_SOCKET": notify_path}
    )
    master.argv = [sys.executable, "-c", ACTIVATE, str(listener.fileno()), *master.argv[1:]]
    try:
        master.start(pass_fds=(listener.fileno(),))
        listener.close()  # the server holds it now
        assert notifications.recv(1024) == b"READY=1"
        assert "systemd socket activation" in master.log()
        assert get(port)[0] == 200
        master.signal(signal.SIGHUP)
        assert notifications.recv(1024).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert notifications.recv(1024) == b"READY=1"
        master.signal(signal.SIGTERM)
        assert notifications.recv(1024) == b"STOPPING=1"
        assert master.proc.wait(10) == 0
    finally:
        notifications.close()
        master.stop()


def test_usr2_rolled_back_by_stopping_the_new_master(tmp_path):
    path = tmp_path / "s.sock"
    master = Master("slow:app", "--workers", "1", "--bind", f"unix:{path}", tmp=tmp_path).start()
    new_master = None
    try:
        old_workers = master.wait_workers(1)
        load = Load(master.port, threads=4).start()
        master.signal(signal.SIGUSR2)
        new_master = wait_until(lambda: _pid_in(master.pidfile, other_than=master.pid), 10)
        assert new_master, master.log()[-3000:]
        master.wait_log(r"upgrade: serving", 10)
        signal_pid(new_master, signal.SIGTERM)
        master.wait_log(
            r"USR2: the new master \(pid \d+\) exited \(exit status 0\); this master keeps serving"
        )
        assert wait_until(lambda: _pid_in(master.pidfile) == master.pid, 3)
        assert not (tmp_path / "master.pid.oldbin").exists()
        assert " ".join(psutil.Process(master.pid).cmdline()).strip() == "ehttpd: master [slow:app]"
        load.wait_ok(200)
        load.stop()
        assert not load.failures, load.summary()
        assert master.worker_pids() == old_workers
        assert path.exists()  # the new master left the unix socket file to the old one
        assert master.status()["pid"] == master.pid  # and the control socket answers for the old one
    finally:
        if new_master:
            signal_pid(new_master, signal.SIGKILL)
        master.stop()


def test_idle_connections_never_pin_the_only_thread_on_tcp_or_unix(tmp_path):
    """The keep-alive grace (a receive timeout) holds for connections queued before any worker was up,
    and for unix sockets, whose accepted connections do not inherit the listener's options on Linux."""
    path = tmp_path / "s.sock"
    master = Master("slow:app", "--workers", "1", "--threads", "1", "--bind", f"unix:{path}", tmp=tmp_path)
    master.start(wait=False)
    early = []
    try:
        deadline = time.monotonic() + 10
        while not early and time.monotonic() < deadline:
            try:  # connect as soon as the master listens, before its worker has booted
                early.append(socket.create_connection(("127.0.0.1", master.port), timeout=5))
            except ConnectionRefusedError:
                time.sleep(0.01)
        assert early, master.log()
        master.wait_workers(1)
        time.sleep(0.3)  # the one pool thread took the early connection: it must park it, idle
        assert get(master.port, timeout=3)[0] == 200
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(5)
            unix.connect(str(path))
            unix.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert unix.recv(65536).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.3)  # now the unix connection is idle in keep-alive: parked too
            assert get(master.port, timeout=3)[0] == 200
    finally:
        for sock in early:
            sock.close()
        master.stop()


def test_bind_fd_serves_on_an_inherited_descriptor(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    master = Master("slow:app", "--workers", "2", "--bind", f"fd://{fd}", tmp=tmp_path, port=port, bind=False)
    try:
        master.start(pass_fds=(fd,))
        listener.close()  # the server holds it now
        workers = master.wait_workers(2)
        assert int(get(port)[1]) in workers
        assert f"127.0.0.1:{port}" in master.log()
    finally:
        listener.close()
        master.stop()
