"""The launcher as users run it: real `python -m ehttpd` processes, their exit codes and stderr lines."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time

import pytest

from ehttpd.cli import app_load_error, build_parser
from ehttpd.config import OPTIONS, Settings
from tests.helpers import APPS, ROOT, ServerProcess, raw_request

APP = "def app(request):\n    from ehttpd import Response\n    return Response(200, b'ok')\n"


def ehttpd(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EHTTPD_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "ehttpd", *args],
        cwd=cwd,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=30,
    )


def effective(stdout: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in stdout.splitlines())


@pytest.fixture
def project(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_check_config_precedence(project):
    (project / "ehttpd.toml").write_text(
        'app = "app:app"\nthreads = 4\nbacklog = 100\nname = "file"\n[limits]\nmax_request_line = 1000\n'
    )
    env = {"EHTTPD_CONFIG": "ehttpd.toml", "EHTTPD_BACKLOG": "200", "EHTTPD_NAME": "env"}
    env |= {"EHTTPD_BIND": "127.0.0.1:1,[::1]:2", "EHTTPD_MAX_HEADER_COUNT": "50"}
    args = ["--check-config", "-n", "flag", "--limit-request-line", "2000", "-w", "3", "--no-preload"]
    result = ehttpd(*args, "--access-logformat", "%(h)s", "--keep-alive", "7", cwd=project, env=env)
    assert (result.returncode, result.stderr) == (0, "")
    got = effective(result.stdout)
    assert got["app"] == '"app:app"' and got["threads"] == "4"  # file over defaults
    assert got["backlog"] == "200" and got["max_header_count"] == "50"  # environment over file
    assert got["bind"] == '["127.0.0.1:1", "[::1]:2"]'
    assert got["name"] == '"flag"' and got["max_request_line"] == "2000"  # flags over all
    assert got["workers"] == "3" and got["preload"] == "false"
    assert got["access_log_format"] == '"%(h)s"' and got["keepalive_timeout"] == "7.0"
    assert got["max_body"] == str(1 << 30)  # untouched default
    assert set(got) == set(OPTIONS) - {"config"}


def test_pyproject_tool_table_is_picked_up(project):
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.ehttpd]\napp = "app:app"\nthreads = 3\n'
    )
    result = ehttpd("--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    assert effective(result.stdout)["threads"] == "3"
    assert effective(ehttpd("--check-config", "--threads", "5", cwd=project).stdout)["threads"] == "5"


BROKEN_APPS = {
    "raises.py": "raise RuntimeError('no database')\n",
    "syntax.py": "def app(:\n",
    "factory.py": "def make():\n    raise ValueError('bad')\n",
    "exits.py": "raise SystemExit(3)\n",
}
SOURCE_ERRORS = [
    (["app:app", "-w", "x"], {}, "--workers must be a positive integer (or 0: one per CPU), got 'x'"),
    (
        ["app:app"],
        {"EHTTPD_THREADS": "0"},
        "EHTTPD_THREADS must be a positive integer up to 2,147,483,647, got 0",
    ),
    (["app:app", "-b", "::1"], {}, "--bind must be HOST:PORT, [V6]:PORT, unix:PATH or fd://N, got '::1'"),
    (["app:app", "--timeout"], {}, "argument --timeout/-t: expected one argument"),
    (["app:app", "--bogus"], {}, "unrecognized arguments: --bogus"),
    ([], {}, "no app given: ehttpd module:app (or app = ... in the config file)"),
    (
        ["app:app", "-c", "bad.toml"],
        {},
        "bad.toml is not valid TOML: Expected '=' after a key in a key/value pair",
    ),
    (["app:app", "-c", "typo.toml"], {}, "unknown setting 'max_bdy' in typo.toml (did you mean 'max_body'?)"),
    (
        ["app:app", "-c", "missing.toml"],
        {},
        "cannot read config file 'missing.toml': No such file or directory",
    ),
    (
        ["nosuchmodule:app"],
        {},
        "cannot import 'nosuchmodule': ModuleNotFoundError: No module named 'nosuchmodule'",
    ),
    (["app:nope"], {}, "module 'app' has no attribute 'nope'"),
    (["raises:app"], {}, "cannot import 'raises': RuntimeError: no database"),
    (["syntax"], {}, "cannot import 'syntax': SyntaxError: invalid syntax (syntax.py, line 1)"),
    (["factory:make()"], {}, "factory make() failed: ValueError: bad"),
    (["exits:app"], {}, "importing 'exits:app' raised SystemExit"),
]


@pytest.mark.parametrize("check", [True, False], ids=["check-config", "launch"])
@pytest.mark.parametrize(("args", "env", "line"), SOURCE_ERRORS)
def test_bad_start_is_one_line_and_exit_2(project, args, env, line, check):
    (project / "bad.toml").write_text("workers 4\n")
    (project / "typo.toml").write_text("max_bdy = 4\n")
    for name, text in BROKEN_APPS.items():
        (project / name).write_text(text)
    if check:
        args = [*args, "--check-config"]
    result = ehttpd(*args, "-b", "127.0.0.1:0", cwd=project, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("ehttpd: error: " + line)
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")


def test_every_setting_has_a_flag():
    strings = {s for action in build_parser()._actions for s in action.option_strings} | {"app"}
    for option in OPTIONS.values():
        assert set(option.flags) <= strings, option.name
    for gunicorn_flag in ("-w", "-b", "-p", "-n", "-c", "--keep-alive", "--limit-request-field_size"):
        assert gunicorn_flag in strings


def test_help_and_version(project):
    help = ehttpd("--help", cwd=project)
    assert help.returncode == 0 and "--limit-request-line" in help.stdout and "%(atom)s" in help.stdout
    version = ehttpd("--version", cwd=project)
    assert version.returncode == 0 and version.stdout.startswith("ehttpd ")


def test_settings_reach_the_running_server():
    env = {"EHTTPD_SERVER_HEADER": "from-env", "EHTTPD_WORKERS": "1"}
    server = ServerProcess("hello:app", "--limit-request-line", "100", "--threads", "2", env=env).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/" + "a" * 50)
        response = conn.getresponse()
        assert (response.status, response.getheader("Server"), response.read()) == (
            200,
            "from-env",
            b"Hello world\r\n",
        )
        conn.close()
        reply = raw_request(server.port, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 414 ")
    finally:
        server.stop()


def test_import_check_in_a_throwaway_child(project):
    """What the launcher runs before starting the master; the app's modules never enter this process."""
    for name, text in BROKEN_APPS.items():
        (project / name).write_text(text)
    (project / "dies.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    chdir = str(project)
    assert app_load_error(Settings(app="app:app", chdir=chdir)) is None
    assert (
        app_load_error(Settings(app="raises:app", chdir=chdir))
        == "cannot import 'raises': RuntimeError: no database"
    )
    assert app_load_error(Settings(app="exits:app", chdir=chdir)) == "importing 'exits:app' raised SystemExit"
    assert app_load_error(Settings(app="dies:app", chdir=chdir)).startswith(
        "importing 'dies:app' killed its process"
    )
    assert not {"raises", "exits", "dies"} & set(sys.modules)


def test_control_commands_dispatch_with_the_configured_pidfile(project):
    (project / "pyproject.toml").write_text('[tool.ehttpd]\npidfile = "run/app.pid"\n')
    result = ehttpd("status", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("ehttpd: error: cannot read the pid file run/app.pid: ")
    explicit = ehttpd("stop", "--pid", "other.pid", cwd=project)
    assert explicit.returncode == 1 and "cannot read the pid file other.pid" in explicit.stderr


def test_error_log_file(tmp_path):
    log = tmp_path / "error.log"
    server = ServerProcess("hello:app", "-w", "1", "--error-logfile", str(log)).start()
    try:
        assert f"127.0.0.1:{server.port}" in log.read_text()
        assert "127.0.0.1" not in server.log()  # stderr stays quiet
    finally:
        server.stop()
    _log_in_a_missing_directory_fails_the_launch(tmp_path, "--error-log", "error")


def test_an_access_log_that_cannot_be_opened_fails_the_launch_in_one_line(tmp_path):
    _log_in_a_missing_directory_fails_the_launch(tmp_path, "--access-log", "access")


def _log_in_a_missing_directory_fails_the_launch(tmp_path, flag: str, which: str) -> None:
    path = tmp_path / "no" / f"{which}.log"
    bad = ehttpd("hello:app", flag, str(path), "-b", "127.0.0.1:0", cwd=APPS)
    assert bad.returncode == 2
    assert bad.stderr == f"ehttpd: error: cannot open the {which} log '{path}': No such file or directory\n"


def test_a_second_master_does_not_take_a_running_masters_pid_file(tmp_path):
    pidfile = tmp_path / "m.pid"
    server = ServerProcess("hello:app", "-w", "1", "--pid", str(pidfile)).start()
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = ehttpd("hello:app", "-w", "1", "-b", "127.0.0.1:0", "--pid", str(pidfile), cwd=APPS)
        assert second.returncode == 1
        assert f"the pid file {pidfile} names master {server.pid}, which is running" in second.stderr
        assert int(pidfile.read_text()) == server.pid  # still the first master's
        status = ehttpd("status", "--pid", str(pidfile), cwd=tmp_path)
        assert status.returncode == 0 and f"master {server.pid}" in status.stdout
    finally:
        server.stop()
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")  # stale: its process has exited
    with ServerProcess("hello:app", "-w", "1", "--pid", str(pidfile)) as again:
        deadline = time.monotonic() + 10
        while int(pidfile.read_text()) != again.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(pidfile.read_text()) == again.pid


def test_a_pid_file_that_cannot_be_written_ends_the_launch_cleanly(tmp_path):
    sock = tmp_path / "s.sock"
    bad = ehttpd("hello:app", "-b", f"unix:{sock}", "--pid", str(tmp_path / "no" / "m.pid"), cwd=APPS)
    assert bad.returncode == 1
    assert f"cannot write the pid file {tmp_path}/no/m.pid" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not sock.exists()  # the unix socket it had bound is gone too


def test_control_commands_never_signal_a_process_that_is_not_ehttpd(tmp_path):
    pidfile = tmp_path / "m.pid"
    other = subprocess.Popen(["sleep", "30"])  # a stale pid file's pid, reused by another program
    try:
        pidfile.write_text(f"{other.pid}\n")
        for command in ("stop", "reload"):
            result = ehttpd(command, "--pid", str(pidfile), cwd=tmp_path)
            assert result.returncode == 1
            assert f"pid {other.pid} (from {pidfile}) is not an ehttpd master" in result.stderr
        assert other.poll() is None  # neither TERM nor HUP reached it
    finally:
        other.kill()
        other.wait()


def test_master_stop_through_the_launcher(tmp_path):
    pidfile = tmp_path / "m.pid"
    server = ServerProcess("hello:app", "-w", "1", env={"EHTTPD_PIDFILE": str(pidfile)}).start()
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(pidfile.read_text()) == server.pid
        stop = ehttpd("stop", cwd=tmp_path, env={"EHTTPD_PIDFILE": str(pidfile)})
        assert (stop.returncode, stop.stderr) == (0, "")
        assert server.proc.wait(10) == 0
    finally:
        server.stop()
