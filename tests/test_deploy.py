"""The deployment recipes of docs/deployment.md, run with the files in deploy/ so they cannot rot.

systemd socket activation and sd_notify (systemd-socket-activate, or an exact emulation of it), nginx and
HAProxy in front of ehttpd while its master reloads under load, and the Kubernetes termination sequence.
Everything listens on 127.0.0.1; clients connect from 127.0.0.2 (tests/extproxy.py) so the address ehttpd
reports can be told from the proxy's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest

from .extproxy import CLIENT_HOST, NGINX_MAIN, ExternalProxy
from .helpers import ROOT, ServerProcess, free_port, wait_for_port
from .tlscerts import Certs, client_context, make_certs

DEPLOY = ROOT / "deploy"
APP = "peer_echo:app"


# -- reading the recipes ----------------------------------------------------------------------------------
def substitute(text: str, replacements: dict[str, str]) -> str:
    """Replace each key exactly once: a recipe edited so that a key no longer matches fails the test."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"expected {old!r} once in the recipe"
        text = text.replace(old, new)
    return text


def recipe_args(path: Path, bind: str) -> list[str]:
    """The ehttpd arguments of the `# ehttpd: ehttpd ARGS` comment of `path` that binds to `bind`."""
    for line in path.read_text().splitlines():
        if line.startswith("# ehttpd: ") and f"--bind {bind}" in line:
            argv = shlex.split(line.removeprefix("# ehttpd: "))
            assert argv[0] == "ehttpd" and argv[1] == "app:app", line
            return argv[2:]
    raise AssertionError(f"no '# ehttpd: ... --bind {bind}' line in {path}")


def rebind(args: list[str], port: int) -> list[str]:
    """The arguments with the recipe's --bind replaced by 127.0.0.1:port (ServerProcess then adds none)."""
    i = args.index("--bind")
    return [*args[:i], "--bind", f"127.0.0.1:{port}", *args[i + 2 :]]


def unit(path: Path) -> dict[str, str]:
    """key=value lines of a systemd unit (the last wins, as systemd does for these keys)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^\w+=", line))
    return {key: value for key, value in pairs}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if found is None:
        pytest.skip(
            f"{name} is not installed and could not be (scripts/test installs it from Debian's packages)"
        )
    return found


# -- clients ----------------------------------------------------------------------------------------------
def get_json(conn: http.client.HTTPConnection, path: str = "/", headers: dict | None = None) -> dict:
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, (resp.status, body)
    return json.loads(body)


def connect(
    port: int, context: ssl.SSLContext | None = None, timeout: float = 10
) -> http.client.HTTPConnection:
    source = (CLIENT_HOST, 0)
    if context is not None:
        return http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=context, source_address=source
        )
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=source)


class Load:
    """Client threads sending GETs over keep-alive connections until stopped; every answer is recorded."""

    def __init__(self, port: int, path: str = "/?sleep=20", threads: int = 3) -> None:
        self.port, self.path = port, path
        self.stop_event = threading.Event()
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.pids: set[int] = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        conn = connect(self.port)
        try:
            while not self.stop_event.is_set():
                try:
                    conn.request("GET", self.path)
                    resp = conn.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    with self.lock:
                        self.errors.append(repr(exc))
                    conn.close()
                    continue
                with self.lock:
                    self.statuses.append(resp.status)
                    if resp.status == 200:
                        self.pids.add(json.loads(body)["pid"])
        finally:
            conn.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)
            assert not thread.is_alive(), "a client thread hung"

    def __exit__(self, *exc) -> None:
        self.stop()


def hup_under_load(server: ServerProcess, port: int, seconds: float = 4.0, every: float = 0.5) -> None:
    """HUP the master every `every` s for `seconds` while clients load `port`; nothing may fail."""
    with Load(port) as load:
        time.sleep(0.3)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server.signal(signal.SIGHUP)
            time.sleep(every)
        time.sleep(1.0)  # the last reload's new workers take over
    bad = [status for status in load.statuses if status != 200]
    assert not load.errors and not bad, (load.errors[:5], bad[:5], server.log()[-3000:])
    assert len(load.statuses) > 50, len(load.statuses)
    assert len(load.pids) > 2, "the workers were never replaced: the reloads did not happen"  # 2 workers
    assert server.proc is not None and server.proc.poll() is None


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


# -- (a) systemd: socket activation and sd_notify ---------------------------------------------------------
EMULATE_SOCKET_ACTIVATE = """\
import os, socket, sys
# As `systemd-socket-activate -l ADDR CMD`: bind, put the listener on fd 3, and exec CMD in this process,
# so LISTEN_PID is CMD's pid.
host, port = sys.argv[1].rsplit(":", 1)
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((host, int(port)))
sock.listen(2048)
if sock.fileno() != 3:
    os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def socket_activate(port: int, env: dict[str, str]) -> list[str]:
    """The command prefix that passes a listener on 127.0.0.1:port as fd 3 with LISTEN_FDS/LISTEN_PID."""
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        return [sys.executable, "-c", EMULATE_SOCKET_ACTIVATE, f"127.0.0.1:{port}"]
    # Like systemd, the tool gives the service only the environment it is told to.
    return [tool, "-l", f"127.0.0.1:{port}", *(f"-E{key}={value}" for key, value in env.items())]


def next_state(notify: socket.socket, wanted: str, timeout: float = 20.0) -> str:
    """Read datagrams from NOTIFY_SOCKET until one has the line `wanted`; return that datagram."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        notify.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            message = notify.recv(4096).decode()
        except TimeoutError:
            break
        if wanted in message.splitlines():
            return message
        seen.append(message)
    raise AssertionError(f"no {wanted} on NOTIFY_SOCKET within {timeout}s; got {seen}")


def test_systemd_units_follow_the_recipe():
    service = unit(DEPLOY / "systemd" / "ehttpd.service")
    socket_unit = unit(DEPLOY / "systemd" / "ehttpd.socket")
    args = shlex.split(service["ExecStart"])
    assert service["Type"] == "notify" and service["NotifyAccess"] == "all"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert float(service["TimeoutStopSec"]) > float(option(args, "--graceful-timeout"))
    assert "--bind" not in args and socket_unit["ListenStream"]  # the socket comes from ehttpd.socket


def test_systemd_socket_activation_and_notify(tmp_path):
    service = unit(DEPLOY / "systemd" / "ehttpd.service")
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "ehttpd" and argv[1] == "app:app", argv
    run = Path(tmp_path / "run")
    run.mkdir()
    args = [arg.replace("/run/ehttpd", str(run)) for arg in argv[2:]]  # RuntimeDirectory=ehttpd

    notify_path = str(tmp_path / "notify")
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        server = ServerProcess(APP, *args, port=port, bind=False)
        env = {
            "NOTIFY_SOCKET": notify_path,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": server.env["PYTHONPATH"],
        }
        server.env.update(env)
        server.argv = [*socket_activate(port, env), *server.argv]
        server.start(wait=False)
        try:
            # systemd-socket-activate starts the service on the first connection, as an activated
            # socket does: that connection and the request after it wait in the listen queue while
            # ehttpd starts.
            wait_for_port(port, proc=server.proc)
            first = get_json(connect(port, timeout=20))
            next_state(notify, "READY=1")
            assert first["peer"][0] == CLIENT_HOST and first["pid"] != server.pid
            master = int((run / "ehttpd.pid").read_text())
            assert master == server.pid, "LISTEN_PID must name the ehttpd master, which execs in place"

            server.signal(signal.SIGHUP)  # ExecReload=/bin/kill -HUP $MAINPID
            reloading = next_state(notify, "RELOADING=1")
            assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M), reloading
            next_state(notify, "READY=1")
            # Not at once: a lone connection arriving while the old workers exit can wait for the next
            # one (seen 3 in 15 after a HUP with a plain --bind too; reported, not this recipe's concern).
            time.sleep(0.3)
            assert get_json(connect(port))["pid"] != first["pid"], "HUP did not replace the workers"

            server.signal(signal.SIGTERM)  # KillSignal=SIGTERM
            next_state(notify, "STOPPING=1")
            assert server.proc is not None
            assert server.proc.wait(float(service["TimeoutStopSec"])) == 0
        finally:
            server.stop()


# -- (b) nginx in front -----------------------------------------------------------------------------------


def test_nginx_in_front(tmp_path, certs):
    recipe = DEPLOY / "nginx.conf"
    backend, port, tls_port = free_port(), free_port(), free_port()
    site = substitute(
        recipe.read_text(),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{backend};",
            "listen 80;": f"listen 127.0.0.1:{port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
            "/etc/ssl/certs/shop.example.pem": str(certs.server.cert),
            "/etc/ssl/private/shop.example.key": str(certs.server.key),
        },
    )
    (tmp_path / "ehttpd.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(NGINX_MAIN.format(dir=tmp_path, connections=256, site="ehttpd.conf"))
    argv = [binary("nginx"), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    server = ServerProcess(
        APP, *rebind(recipe_args(recipe, "127.0.0.1:8000"), backend), bind=False, port=backend
    )
    with server:
        proxy = ExternalProxy(argv, [port, tls_port], tmp_path).start()
        try:
            forged = {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "Forwarded": "for=6.6.6.6",
            }
            got = get_json(connect(port), headers=forged)
            assert (got["peer"], got["scheme"]) == ([CLIENT_HOST, 0], "http")
            got = get_json(connect(tls_port, client_context(certs)), headers=forged)
            assert (got["peer"], got["scheme"]) == ([CLIENT_HOST, 0], "https")
            hup_under_load(server, port)
        finally:
            proxy.stop()


# -- (c) HAProxy in front ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["http-forwardfor", "tcp-send-proxy-v2"])
def test_haproxy_in_front(tmp_path, mode):
    recipe = DEPLOY / "haproxy.cfg"
    http_backend, proxy_backend, http_port, tcp_port = (free_port() for _ in range(4))
    config = substitute(
        recipe.read_text(),
        {
            "bind :80\n": f"bind 127.0.0.1:{http_port}\n",
            "bind :8080\n": f"bind 127.0.0.1:{tcp_port}\n",
            "server app1 127.0.0.1:8000\n": f"server app1 127.0.0.1:{http_backend}\n",
            "server app1 127.0.0.1:8001 ": f"server app1 127.0.0.1:{proxy_backend} ",
        },
    )
    (tmp_path / "haproxy.cfg").write_text(config)
    argv = [binary("haproxy"), "-db", "-f", str(tmp_path / "haproxy.cfg")]
    if mode == "http-forwardfor":
        backend, port, bind = http_backend, http_port, "127.0.0.1:8000"
    else:
        backend, port, bind = proxy_backend, tcp_port, "127.0.0.1:8001"
    server = ServerProcess(APP, *rebind(recipe_args(recipe, bind), backend), bind=False, port=backend)
    with server:
        proxy = ExternalProxy(argv, [http_port, tcp_port], tmp_path).start()
        try:
            got = get_json(connect(port), headers={"X-Forwarded-For": "203.0.113.9"})
            assert got["peer"][0] == CLIENT_HOST and got["scheme"] == "http", got
            if mode == "tcp-send-proxy-v2":
                assert got["peer"][1] != 0  # the PROXY header carries the client's port; XFF does not
            hup_under_load(server, port)
        finally:
            proxy.stop()


# -- (d) Kubernetes graceful termination ------------------------------------------------------------------
def kubernetes_numbers() -> tuple[list[str], float, float]:
    """(the container's ehttpd args, the preStop sleep, terminationGracePeriodSeconds) of the recipe."""
    text = (DEPLOY / "kubernetes.yaml").read_text()
    command = json.loads(re.search(r"^\s+command: (\[.*\])$", text, re.M).group(1))
    args = json.loads(re.search(r"^\s+args: (\[.*\])$", text, re.M).group(1))
    sleep = json.loads(re.search(r"preStop:\s+#.*\n\s+exec:\s+command: (\[.*\])", text).group(1))
    grace = re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1)
    assert command == ["ehttpd"] and args[0] == "app:app" and sleep[0] == "sleep"
    return args[1:], float(sleep[1]), float(grace)


def test_kubernetes_termination_sequence():
    args, pre_stop, grace = kubernetes_numbers()
    graceful = float(option(args, "--graceful-timeout"))
    assert grace > pre_stop + graceful, "the kubelet would SIGKILL a draining server"
    assert "/healthz" in (DEPLOY / "kubernetes.yaml").read_text()  # peer_echo answers any path

    # The same sequence, scaled down: preStop 1 s, of which 0.4 s still brings traffic; graceful 4 s.
    pre_stop, lag, graceful = 1.0, 0.4, 4.0
    port = free_port()
    args = [*rebind(args, port), "--graceful-timeout", str(graceful)]
    server = ServerProcess(APP, *args, bind=False, port=port)
    with server:
        assert get_json(connect(port), "/healthz")["pid"]  # the readiness probe's path
        slow: list[tuple[int, float]] = []

        def in_flight() -> None:
            conn = connect(port)
            conn.request("GET", "/?sleep=2000")
            resp = conn.getresponse()
            resp.read()
            slow.append((resp.status, time.monotonic()))

        with Load(port) as load:
            time.sleep(0.5)
            started = time.monotonic()  # the pod is deleted: preStop starts, endpoints are being removed
            time.sleep(lag)
            long_requests = [threading.Thread(target=in_flight) for _ in range(2)]
            for thread in long_requests:
                thread.start()
            time.sleep(0.1)
            load.stop()  # every proxy has removed the endpoint: no new requests
            time.sleep(max(pre_stop - (time.monotonic() - started), 0))
            term = time.monotonic()
            server.signal(signal.SIGTERM)
            assert server.proc is not None
            code = server.proc.wait(graceful + 5)
            exited = time.monotonic()
            for thread in long_requests:
                thread.join(10)
        assert code == 0, server.log()[-2000:]
        assert exited - term < graceful, "the master outlived its graceful timeout"
        assert not load.errors and set(load.statuses) == {200}, (load.errors[:5], set(load.statuses))
        assert [status for status, _ in slow] == [200, 200], slow
        assert all(done > term for _, done in slow), "the slow requests were not in flight at TERM"
        with pytest.raises(OSError):
            wait_for_port(port, timeout=0.5)  # nothing listens any more
