"""The master's life: graceful and fast stop, a killed worker, TTIN / TTOU, boot failures, a dead master,
process titles and the control commands."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import psutil

from .helpers import run_ehttpd
from .masterkit import Load, Master, get, gone, read_until_closed, refused, signal_pid, wait_until


def test_term_lets_16_in_flight_requests_finish_then_refuses_and_exits_0(tmp_path):
    master = Master(
        "slow:app", "--workers", "2", "--threads", "16", "--graceful-timeout", "6", tmp=tmp_path
    ).start()
    try:
        workers = master.wait_workers(2)
        results: list[object] = []
        lock = threading.Lock()

        def slow_request() -> None:
            try:
                outcome: object = get(master.port, "/slow?s=2")[0]
            except Exception as exc:
                outcome = repr(exc)
            with lock:
                results.append(outcome)

        clients = [threading.Thread(target=slow_request) for _ in range(16)]
        for client in clients:
            client.start()
        assert wait_until(lambda: _connections(workers) >= 16, 5), "16 requests not in flight"
        master.signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert wait_until(lambda: refused(master.port), 1.5), "new connections still accepted after TERM"
        master.proc.wait(6)
        took = time.monotonic() - stopped
        for client in clients:
            client.join(5)
        assert results == [200] * 16, results
        assert master.proc.returncode == 0
        assert took < 6, took
        assert gone(workers | {master.pid})
    finally:
        master.stop()


def _connections(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += sum(1 for c in psutil.Process(pid).net_connections("tcp") if c.status == "ESTABLISHED")
        except psutil.Error:
            pass
    return total


def test_a_storm_of_term_signals_does_not_wedge_a_draining_worker(tmp_path):
    # Each TERM runs the worker's handler at an arbitrary point of its main loop; a handler that takes a
    # lock the main thread may hold (threading.Event.set did) hangs the worker for good.
    master = Master("slow:app", "--workers", "1", "--graceful-timeout", "20", tmp=tmp_path).start()
    try:
        (worker,) = master.wait_workers(1)
        results: list[object] = []
        client = threading.Thread(target=lambda: results.append(get(master.port, "/slow?s=2")[0]))
        client.start()
        assert wait_until(lambda: _connections({worker}) >= 1, 5), "the request is not in flight"
        storm_end = time.monotonic() + 1.0  # while the request runs
        while time.monotonic() < storm_end:
            signal_pid(worker, signal.SIGTERM)
        client.join(5)
        assert results == [200]
        assert wait_until(lambda: gone({worker}), 3), "the worker did not exit once its request finished"
    finally:
        master.stop()


def test_connections_waiting_to_be_accepted_at_term_are_answered_not_reset(tmp_path):
    # The worker's one thread is busy, so new connections wait in the kernel's accept queue. When TERM
    # makes the worker stop listening, those are connections the client saw accepted: they get answered
    # (with Connection: close), where closing the listener with them queued would reset them.
    master = Master(
        "slow:app", "--workers", "1", "--threads", "1", "--graceful-timeout", "10", tmp=tmp_path
    ).start()
    queued: list[socket.socket] = []
    try:
        (worker,) = master.wait_workers(1)
        results: list[object] = []
        client = threading.Thread(target=lambda: results.append(get(master.port, "/slow?s=1.5")[0]))
        client.start()
        assert wait_until(lambda: _connections({worker}) >= 1, 5), "the slow request is not in flight"
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", master.port), timeout=10)
            queued.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _connections({worker}) == 1, "the four connections were accepted: nothing waits in the queue"
        master.signal(signal.SIGTERM)
        answers = [read_until_closed(sock) for sock in queued]
        client.join(5)
        assert results == [200]
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in answer, (
                answer
            )
        assert master.proc.wait(10) == 0
    finally:
        for sock in queued:
            sock.close()
        master.stop()


def test_signals_sent_while_the_master_starts_are_acted_on_not_fatal(tmp_path):
    # The app takes 1.5 s to import (the launcher's import check, then the worker's): a USR1 from
    # logrotate or a HUP in that time used to end the launcher by the signal's default action.
    master = Master("slowboot:app", "--workers", "1", tmp=tmp_path, env={"EHTTPD_TEST_BOOT": "1.5"})
    master.start(wait=False)
    try:
        time.sleep(0.7)
        master.signal(signal.SIGUSR1)
        master.signal(signal.SIGHUP)
        master.wait_log(r"USR1: reopened", timeout=15)
        master.wait_log(r"HUP: starting 1 new workers", timeout=15)
        master.wait_workers(1, timeout=15)
        assert master.proc.poll() is None
        assert get(master.port, "/")[0] == 200
    finally:
        master.stop()
    assert master.proc.returncode == 0


def test_int_stops_fast(tmp_path):
    master = Master("slow:app", "--workers", "2", "--graceful-timeout", "30", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        client = threading.Thread(target=lambda: _ignore(get, master.port, "/slow?s=10"), daemon=True)
        client.start()
        time.sleep(0.3)
        master.signal(signal.SIGINT)
        master.proc.wait(4)  # not the 10 s of the request, nor the 30 s of the graceful timeout
        assert master.proc.returncode == 0
        assert wait_until(lambda: gone(workers), 2)
    finally:
        master.stop()


def _ignore(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def test_a_killed_worker_is_replaced_within_a_second_and_only_its_requests_fail(tmp_path):
    master = Master("slow:app", "--workers", "2", "--threads", "8", tmp=tmp_path).start()
    try:
        before = master.wait_workers(2)
        load = Load(master.port, threads=8).start()
        load.wait_ok(200)
        victim = max(before, key=lambda pid: load.bodies[f"{pid}\n"])  # one that serves clients now
        psutil.Process(victim).kill()
        killed = time.monotonic()
        # Replaced = a new worker process has answered a request.
        newcomer = wait_until(lambda: {int(b) for b in list(load.bodies)} - before, 3)
        took = time.monotonic() - killed
        load.wait_ok(200)
        load.stop()
        assert newcomer, master.log()[-2000:]
        assert took < 1.0, f"replaced in {took:.2f}s"
        assert master.worker_pids() == (before - {victim}) | newcomer
        # Only the requests that were on the killed worker at that moment may fail: at most one per client.
        assert len(load.failures) <= 8, load.summary()
        print(f"replaced in {took:.2f}s; {load.summary()}")
    finally:
        master.stop()


def test_ttin_and_ttou_under_load(tmp_path):
    master = Master("slow:app", "--workers", "2", "--threads", "8", tmp=tmp_path).start()
    try:
        master.wait_workers(2)
        load = Load(master.port, threads=8).start()
        load.wait_ok(100)
        # One signal at a time: POSIX merges a signal sent again before the first is handled.
        for count in (3, 4):
            master.signal(signal.SIGTTIN)
            four = master.wait_workers(count)
        load.wait_ok(100)
        for count in (3, 2, 1, 1):  # one more than can go: never below one worker
            master.signal(signal.SIGTTOU)
            one = master.wait_workers(count)
        assert one < four
        load.wait_ok(100)
        load.stop()
        assert not load.failures, load.summary()
        assert wait_until(lambda: master.status()["target"] == 1, 3)
        print(load.summary())
    finally:
        master.stop()


def test_workers_that_keep_failing_to_boot_stop_the_master(tmp_path):
    mark = tmp_path / "imported-once"
    master = Master("bootfail:app", "--workers", "2", tmp=tmp_path, env={"EHTTPD_TEST_MARK": str(mark)})
    master.start(wait=False)
    try:
        assert master.proc.wait(15) == 3
        log = master.log()
        assert "failed to boot 5 times in a row" in log, log
        assert "fails to boot on purpose" in log
        assert log.count("failed to boot:") == 4  # retried with a growing delay, not in a tight loop
    finally:
        master.stop()


def test_workers_leave_when_the_master_dies(tmp_path):
    master = Master("slow:app", "--workers", "2", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        master.signal(signal.SIGKILL)
        master.proc.wait(5)
        assert wait_until(lambda: gone(workers), 3), "workers outlived their master"
    finally:
        master.stop()


def test_process_titles(tmp_path):
    master = Master("slow:app", "--workers", "2", "--name", "shop", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        assert " ".join(psutil.Process(master.pid).cmdline()).strip() == "ehttpd: master [shop]"
        titles = sorted(" ".join(psutil.Process(pid).cmdline()).strip() for pid in workers)
        assert titles == ["ehttpd: worker 1 [shop]", "ehttpd: worker 2 [shop]"]
        ps = subprocess.run(["ps", "-o", "args=", "-p", str(master.pid)], capture_output=True, text=True)
        assert ps.stdout.strip() == "ehttpd: master [shop]"
    finally:
        master.stop()


def test_status_reload_and_stop_commands(tmp_path):
    master = Master("slow:app", "--workers", "2", tmp=tmp_path).start()
    try:
        workers = master.wait_workers(2)
        for _ in range(5):
            get(master.port)
        time.sleep(1.2)  # the master refreshes the status file once a second
        status = run_ehttpd("status", "--pid", str(master.pidfile))
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith(f"master {master.pid} [slow:app]")
        rows = [line.split() for line in lines[2:]]
        assert {int(row[1]) for row in rows} == workers
        assert all(row[2] == "up" for row in rows)
        assert sum(int(row[4]) for row in rows) == 5  # requests served, from the workers' heartbeat pages
        assert all(float(row[5]) > 1 for row in rows)  # RSS in MB, from psutil
        reload = run_ehttpd("reload", "--pid", str(master.pidfile))
        assert reload.returncode == 0, reload.stderr
        assert wait_until(
            lambda: len(master.worker_pids() & workers) == 0 and len(master.worker_pids()) == 2, 5
        )
        stop = run_ehttpd("stop", "--pid", str(master.pidfile))
        assert stop.returncode == 0, stop.stderr
        assert master.proc.wait(5) == 0
        assert not master.pidfile.exists()
        missing = run_ehttpd("status", "--pid", str(master.pidfile))
        assert missing.returncode == 1 and "pid file" in missing.stderr
    finally:
        master.stop()


def test_usr1_reopens_the_log_files_of_the_master_and_its_workers(tmp_path):
    error_log = tmp_path / "error.log"
    master = Master(
        "hang:app",
        "--workers",
        "1",
        "--request-timeout",
        "1",
        "--graceful-timeout",
        "2",
        "--error-log",
        str(error_log),
        tmp=tmp_path,
    ).start()
    try:
        master.wait_workers(1)
        rotated = tmp_path / "error.log.1"
        error_log.rename(rotated)  # what logrotate does, before it signals
        master.signal(signal.SIGUSR1)
        assert wait_until(lambda: error_log.exists() and "USR1: reopened" in error_log.read_text(), 5)
        time.sleep(0.5)  # the workers reopen theirs on their next tick
        # A line that only a worker writes: the stack of a request past --request-timeout.
        threading.Thread(target=_ignore, args=(get, master.port, "/stuck"), daemon=True).start()
        assert wait_until(lambda: "a request has run" in error_log.read_text(), 6), error_log.read_text()
        old = rotated.read_text()
        assert "worker 1 (pid" in old and "a request has run" not in old
    finally:
        master.stop()
