"""The master's small parts, each on its own: systemd notify, the heartbeat page across a real fork, the
listener set, the stuck-request watchdog, the status table, log reopening, exit descriptions."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from types import SimpleNamespace

from ehttpd import control, systemd
from ehttpd.children import describe_exit
from ehttpd.config import Settings
from ehttpd.heartbeat import Heartbeat
from ehttpd.master import Master
from ehttpd.proctitle import title
from ehttpd.reopen import reopen_log_files
from ehttpd.sockets import Listeners, open_listeners
from ehttpd.watchdog import StuckRequests, thread_stack


def test_listen_fds_are_not_ours_when_listen_pid_differs_and_the_variables_go():
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert systemd.listen_fds(environ) == []
    assert environ == {}
    assert systemd.listen_fds({"LISTEN_PID": "x", "LISTEN_FDS": "1"}) == []


def test_notify_sends_one_datagram_to_a_path_or_an_abstract_socket(tmp_path):
    path = str(tmp_path / "notify")
    name = f"ehttpd-test-{os.getpid()}"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_path,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract,
    ):
        by_path.bind(path)
        abstract.bind("\0" + name)
        assert systemd.notify("READY=1", {"NOTIFY_SOCKET": path})
        assert by_path.recv(100) == b"READY=1"
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert abstract.recv(100) == b"STOPPING=1"
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert systemd.reloading_state().startswith("RELOADING=1\nMONOTONIC_USEC=")


def test_heartbeat_page_is_shared_with_a_forked_child():
    heartbeat = Heartbeat()
    assert heartbeat.last_beat == 0.0 and heartbeat.requests == 0 and not heartbeat.retirement_asked
    pid = os.fork()
    if pid == 0:
        heartbeat.beat(1234, 56.5)
        heartbeat.ask_retirement()
        heartbeat.report_boot_error("cannot import 'app': SyntaxError: é")
        os._exit(0)
    os.waitpid(pid, 0)
    assert (heartbeat.last_beat, heartbeat.requests) == (56.5, 1234)
    assert heartbeat.retirement_asked
    assert heartbeat.boot_error == "cannot import 'app': SyntaxError: é"
    heartbeat.close()


def test_the_master_never_reads_a_beat_half_written():
    # A forked child beats as fast as it can while this process reads, as the master does: a read between
    # the fields' zeroing and their writing (struct.pack_into does both) saw 0.0 and a hung worker.
    heartbeat = Heartbeat()
    heartbeat.beat(1, 1000.0)
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 0.5
        beat = 1000.0
        while time.monotonic() < end:
            beat += 1.0
            heartbeat.beat(1, beat)
        os._exit(0)
    reads, low = 0, []
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            reads += 1
            beat = heartbeat.last_beat
            if beat < 1000.0:
                low.append(beat)
    finally:
        heartbeat.close()
    assert reads > 10_000 and not low, (reads, len(low), low[:5])


def test_listeners_with_reuse_port_bind_one_socket_per_slot_on_one_port():
    settings = Settings(bind=["127.0.0.1:0"], reuse_port=True)
    listeners, source = open_listeners(settings, {})
    try:
        assert source == "bound" and listeners.shared == []
        first, second = listeners.for_slot(1)[0], listeners.for_slot(2)[0]
        assert first is not second
        assert first.getsockname() == second.getsockname()
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert listeners.for_slot(1) == [first]  # held, not bound again
        listeners.close_slot(2)
        assert second.fileno() == -1 and list(listeners.slots) == [1]
    finally:
        listeners.close()


def test_listeners_travel_to_a_new_master_as_descriptors(tmp_path):
    unix = f"unix:{tmp_path / 's.sock'}"
    settings = Settings(bind=["127.0.0.1:0", unix], unix_socket_mode=0o600)
    listeners, _ = open_listeners(settings, {})
    adopted = None
    try:
        data = json.loads(listeners.to_env())
        assert data["shared"] == [sock.fileno() for sock in listeners.shared]
        assert data["paths"] == [str(tmp_path / "s.sock")]
        data["shared"] = [os.dup(fd) for fd in data["shared"]]  # what exec would hand over
        adopted = Listeners.from_env(json.dumps(data), 2048)
        assert [s.getsockname() for s in adopted.shared] == [s.getsockname() for s in listeners.shared]
        assert adopted.describe()[1] == unix
    finally:
        listeners.close(unlink=False)
        if adopted is not None:
            adopted.close(unlink=True)
    assert not (tmp_path / "s.sock").exists()


def test_stuck_requests_are_found_per_thread_and_request():
    watchdog = StuckRequests(timeout=1.0)
    long_request = SimpleNamespace(requests=1, head_started=None)
    busy_keepalive = SimpleNamespace(requests=1, head_started=None)
    reading_head = SimpleNamespace(requests=3, head_started=0.0)
    watchdog.serving.update({1: long_request, 2: busy_keepalive, 3: reading_head})
    assert watchdog.check(100.0) == []
    busy_keepalive.requests += 1  # its next request: a new one, not the same one still running
    assert watchdog.check(100.6) == []
    busy_keepalive.requests += 1
    stuck = watchdog.check(101.2)
    assert [ident for ident, _ in stuck] == [1]
    assert abs(stuck[0][1] - 1.2) < 1e-9
    watchdog.serving.pop(1)  # its thread is done with the connection
    busy_keepalive.requests += 1
    assert watchdog.check(105.0) == []
    assert [ident for ident, _ in watchdog.check(106.1)] == [2]  # the same request for 1.1 s now


def test_the_watchdog_shows_the_stack_of_a_real_thread():
    watchdog = StuckRequests(timeout=1.0)
    release = threading.Event()
    conn = SimpleNamespace(requests=1, head_started=None)

    def handler_that_hangs(c) -> bool:
        release.wait(10)
        return True

    def serve(c) -> bool:  # as Worker._serve: the thread is in `serving` while it serves the connection
        ident = threading.get_ident()
        watchdog.serving[ident] = c
        try:
            return handler_that_hangs(c)
        finally:
            watchdog.serving.pop(ident, None)

    thread = threading.Thread(target=serve, args=(conn,), name="pool-7")
    thread.start()
    try:
        assert wait_for(lambda: watchdog.serving)
        (ident,) = watchdog.serving
        stack = thread_stack(ident)
        assert stack.startswith("thread pool-7:") and "in handler_that_hangs" in stack
        assert "release.wait(10)" in stack
    finally:
        release.set()
        thread.join(5)
    assert watchdog.serving == {}


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_status_table():
    view = {
        "pid": 10,
        "name": "shop",
        "age": 4000.0,
        "generation": 3,
        "target": 2,
        "reloading": True,
        "stopping": False,
        "workers": [
            {
                "number": 1,
                "pid": 11,
                "state": "up",
                "age": 75.2,
                "requests": 1234,
                "rss_mb": 21.04,
                "cpu_percent": 3.25,
                "generation": 3,
            },
        ],
    }
    lines = control.format_status(view).splitlines()
    assert lines[0] == "master 10 [shop]  up 66m  generation 3  workers 2  (reloading)"
    assert lines[2].split() == ["1", "11", "up", "75s", "1234", "21.0", "3.2"]


def test_control_commands_report_a_master_that_is_not_running(tmp_path, capsys):
    pidfile = tmp_path / "x.pid"
    assert control.main(["status", "--pid", str(pidfile)]) == 1
    assert "cannot read the pid file" in capsys.readouterr().err
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # a pid that no longer runs
    pidfile.write_text(f"{child}\n")
    assert control.main(["reload", "--pid", str(pidfile)]) == 1
    assert f"no master is running with pid {child}" in capsys.readouterr().err


def test_reopen_log_files_after_a_rotation(tmp_path):
    path = tmp_path / "error.log"
    logger = logging.getLogger("ehttpd.test-reopen")
    handler = logging.FileHandler(path)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        path.rename(tmp_path / "error.log.1")
        assert reopen_log_files() >= 1
        logger.warning("after")
        handler.flush()
        assert path.read_text() == "after\n"
        assert (tmp_path / "error.log.1").read_text() == "before\n"
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_exit_descriptions_and_titles():
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(3) == "exit status 3 (the app could not be loaded)"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert title("worker 3", "app") == "ehttpd: worker 3 [app]"
    assert title("master", "app", "old") == "ehttpd: master [app] (old)"


def test_hup_keeps_what_only_a_restart_can_change():
    old = Settings(app="a:app", bind=["127.0.0.1:1"], workers=2, backlog=10)
    new = Settings(app="b:app", bind=["127.0.0.1:2"], workers=5, backlog=20, threads=3)
    master = Master(old, lambda: new)
    try:
        settings = master.reread_settings()
    finally:
        os.close(master.wake_r)
        os.close(master.wake_w)
    assert (settings.bind, settings.backlog) == (["127.0.0.1:1"], 10)
    assert (settings.app, settings.workers, settings.threads) == ("b:app", 5, 3)
