"""HUP under load: new workers with freshly imported code first, then the old ones drain; a broken app on
disk leaves the old workers serving."""

from __future__ import annotations

import re
import shutil
import signal
import time

import pytest

from .helpers import APPS
from .masterkit import Load, Master, get, wait_until


@pytest.fixture
def appdir(tmp_path):
    directory = tmp_path / "app"
    directory.mkdir()
    shutil.copy(APPS / "versioned.py", directory / "versioned.py")
    return directory


def set_version(appdir, version: str) -> None:
    path = appdir / "versioned.py"
    path.write_text(re.sub(r'VERSION = ".*"', f'VERSION = "{version}"', path.read_text()))


def answering(port: int, version: str, timeout: float = 5.0) -> bool:
    return bool(wait_until(lambda: get(port)[1].startswith(version + " "), timeout))


def test_hup_every_second_under_load_loads_new_code_without_a_failed_request(tmp_path, appdir):
    master = Master(
        "versioned:app", "--chdir", str(appdir), "--workers", "2", "--threads", "8", tmp=tmp_path
    ).start()
    try:
        master.wait_workers(2)
        load = Load(master.port, threads=8).start()
        load.wait_ok(50)
        start = time.monotonic()
        versions = []
        for i in range(1, 11):
            # The size changes with the text: a .pyc records its source's mtime in whole seconds and its size.
            version = "v" * i + str(i)
            versions.append(version)
            set_version(appdir, version)
            master.signal(signal.SIGHUP)
            assert answering(master.port, version), f"{version} not served after HUP:\n{master.log()[-3000:]}"
            time.sleep(max(0.0, start + i - time.monotonic()))
        load.wait_ok(50)
        load.stop()
        assert not load.failures, load.summary()
        print(load.summary())
        pids_by_version: dict[str, set[str]] = {}
        for body in load.bodies:
            version, pid = body.split()
            pids_by_version.setdefault(version, set()).add(pid)
        # Every reload brought new worker processes: no pid answered with two versions.
        all_pids = [pid for pids in pids_by_version.values() for pid in pids]
        assert len(all_pids) == len(set(all_pids))
        assert set(versions) <= set(pids_by_version), sorted(pids_by_version)
        assert master.proc.poll() is None
    finally:
        master.stop()


def test_hup_with_a_broken_app_keeps_the_old_workers_serving(tmp_path, appdir):
    master = Master("versioned:app", "--chdir", str(appdir), "--workers", "2", tmp=tmp_path).start()
    try:
        old = master.wait_workers(2)
        load = Load(master.port, threads=6).start()
        load.wait_ok(50)
        (appdir / "versioned.py").write_text("def broken(:\n")
        master.signal(signal.SIGHUP)
        master.wait_log(r"reload failed.*SyntaxError")
        load.wait_ok(100)
        load.stop()
        assert not load.failures, load.summary()
        assert master.proc.poll() is None
        assert wait_until(lambda: master.worker_pids() == old, 5), (old, master.worker_pids())
        assert get(master.port)[1].startswith("one ")
        # Fixed on disk, the next HUP loads it.
        shutil.copy(APPS / "versioned.py", appdir / "versioned.py")
        set_version(appdir, "fixed")
        master.signal(signal.SIGHUP)
        assert answering(master.port, "fixed"), master.log()[-3000:]
    finally:
        master.stop()


def test_hup_rereads_the_config_file(tmp_path):
    config = tmp_path / "ehttpd.toml"
    config.write_text("workers = 2\nmax_requests = 0\n")
    master = Master("slow:app", "--config", str(config), tmp=tmp_path).start()
    try:
        first = master.wait_workers(2)
        config.write_text('workers = 3\nbacklog = 100\nlog_level = "warning"\n')
        master.signal(signal.SIGHUP)
        three = master.wait_workers(3)
        assert not three & first
        master.wait_log(r"HUP: backlog, log_level changed; that needs a restart")
    finally:
        master.stop()


def test_hup_with_preload_restarts_the_workers_and_says_the_code_stays(tmp_path, appdir):
    master = Master(
        "versioned:app", "--chdir", str(appdir), "--workers", "2", "--preload", tmp=tmp_path
    ).start()
    try:
        first = master.wait_workers(2)
        set_version(appdir, "edited")
        master.signal(signal.SIGHUP)
        master.wait_log(r"with --preload the app was imported once in the master and is not reloaded")
        assert wait_until(lambda: len(master.worker_pids()) == 2 and not master.worker_pids() & first, 5)
        assert get(master.port)[1].startswith("one ")
    finally:
        master.stop()


def test_a_term_while_new_workers_boot_reports_no_hung_worker(tmp_path):
    # Workers retired before their first beat are draining with no beat at all: not "hung" (a false
    # heartbeat alarm with SIGABRT, counted as a heartbeat restart), just stopped within their deadline.
    master = Master("slowboot:app", "--workers", "2", tmp=tmp_path, env={"EHTTPD_TEST_BOOT": "1.0"}).start()
    try:
        master.wait_workers(2)
        master.signal(signal.SIGHUP)
        time.sleep(0.3)  # the new workers are importing
        master.signal(signal.SIGTERM)
        assert master.proc is not None and master.proc.wait(15) == 0
        assert "has not beaten" not in master.log(), master.log()[-3000:]
    finally:
        master.stop()
