"""Real nginx and HAProxy in front of a test server, each a foreground process on a free port, stopped by pid.

`client_from` makes the client's connections come from 127.0.0.2, so what the proxy forwards (its PROXY
header, its X-Forwarded-For) can be told from the proxy's own 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from .helpers import free_port, wait_for_port

CLIENT_HOST = "127.0.0.2"

# nginx in the foreground as one process, its files under {dir}, and the site from {dir}/{site}.
NGINX_MAIN = """\
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/nginx-error.log;
pid {dir}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/{site};
}}
"""

NGINX_SITE = """\
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://127.0.0.1:{backend};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;
        proxy_set_header X-Forwarded-Host shop.example;
    }}
}}
"""

HAPROXY = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend v1
    bind 127.0.0.1:{port}
    default_backend v1
frontend v2
    bind 127.0.0.1:{port2}
    default_backend v2
backend v1
    server s1 127.0.0.1:{backend} send-proxy
backend v2
    server s1 127.0.0.1:{backend} send-proxy-v2
"""


class ExternalProxy:
    def __init__(self, argv: list[str], ports: list[int], directory: Path) -> None:
        self.argv, self.ports, self.directory = argv, ports, directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> ExternalProxy:
        self.log = open(self.directory / "proxy.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.directory)
        for port in self.ports:
            wait_for_port(port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def nginx(backend: int, directory: Path) -> ExternalProxy:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed")
    port = free_port()
    (directory / "site.conf").write_text(NGINX_SITE.format(port=port, backend=backend))
    main = NGINX_MAIN.format(dir=directory, connections=64, site="site.conf")
    (directory / "nginx.conf").write_text(main)
    return ExternalProxy(
        [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")], [port], directory
    )


def haproxy(backend: int, directory: Path) -> ExternalProxy:
    """Two TCP frontends: the first sends a PROXY v1 header to `backend`, the second a v2 one."""
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if binary is None:
        pytest.skip("haproxy is not installed")
    port, port2 = free_port(), free_port()
    (directory / "haproxy.cfg").write_text(HAPROXY.format(port=port, port2=port2, backend=backend))
    return ExternalProxy([binary, "-db", "-f", str(directory / "haproxy.cfg")], [port, port2], directory)


def client_from(port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:port from 127.0.0.2 (any 127/8 address is local on Linux)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(CLIENT_HOST, 0))
