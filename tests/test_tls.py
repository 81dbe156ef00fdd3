"""TLS end to end: certificates made at test time, real servers, http.client and curl as clients."""

from __future__ import annotations

import array
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from ehttpd.config import ConfigError, resolve

from .helpers import ROOT, ServerProcess, raw_request
from .tlscerts import Certs, client_context, make_certs

CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_args(certs: Certs, *extra: str) -> list[str]:
    return [
        "--workers",
        "1",
        "--certfile",
        str(certs.server.cert),
        "--keyfile",
        str(certs.server.key),
        *extra,
    ]


def https(port: int, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)


def fetch(conn: http.client.HTTPConnection, path: str = "/", method: str = "GET", body=None, **kw):
    conn.request(method, path, body=body, **kw)
    resp = conn.getresponse()
    return resp, resp.read()


def pattern(size: int) -> bytes:
    """The bytes of peer_echo's /file: each 4-byte big-endian word is its own index."""
    words = array.array("I", range((size + 3) // 4))
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()[:size]


def wait_log(server: ServerProcess, pattern: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while not (match := re.search(pattern, server.log())):
        assert time.monotonic() < deadline, f"no log line matching {pattern!r}:\n{server.log()[-3000:]}"
        time.sleep(0.05)
    return match.group(0)


def curl(*args: str) -> subprocess.CompletedProcess:
    if CURL is None:
        pytest.skip("curl is not installed")
    return subprocess.run([CURL, "-sS", *args], capture_output=True, text=True, timeout=30)


# -- a native app over TLS ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(certs, tmp_path_factory):
    files = tmp_path_factory.mktemp("files")
    proc = ServerProcess(
        "peer_echo:app", *tls_args(certs, "--threads", "4"), env={"EHTTPD_TEST_FILES": str(files)}
    )
    yield proc.start()
    proc.stop()


def test_http_client_over_tls(server, certs):
    context = client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    conn = https(server.port, context)
    try:
        resp, body = fetch(conn)
        assert resp.status == 200
        info = json.loads(body)
        assert info["scheme"] == "https" and info["peer"][0] == "127.0.0.1"
        assert conn.sock.getpeercert(binary_form=True) == certs.server.der()
        assert conn.sock.selected_alpn_protocol() == "http/1.1"
    finally:
        conn.close()


def test_a_client_that_does_not_trust_the_certificate_fails(server):
    conn = https(server.port, ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(conn)
    conn.close()


def test_curl_over_tls_reuses_its_connection(server, certs):
    url = f"https://127.0.0.1:{server.port}/"
    result = curl("-v", "--cacert", str(certs.ca.cert), url + "a", url + "b")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(part + "}") for part in result.stdout.split("}")[:2])
    assert first["scheme"] == "https" and first["peer"] == second["peer"]  # one TCP connection
    assert "Re-using existing connection" in result.stderr or "Reusing existing" in result.stderr


def test_keep_alive_with_idle_parking_between_requests(server, certs):
    conn = https(server.port, client_context(certs))
    try:
        peers = []
        for _ in range(4):
            resp, body = fetch(conn)
            assert resp.status == 200
            peers.append(tuple(json.loads(body)["peer"]))
            time.sleep(0.15)  # longer than the keep-alive grace: the connection is parked, then resumed
        assert len(set(peers)) == 1
    finally:
        conn.close()


def test_two_megabyte_post_bodies(server, certs):
    data = os.urandom(2 << 20)
    conn = https(server.port, client_context(certs))
    try:
        resp, body = fetch(conn, method="POST", body=data)
        assert resp.status == 200
        info = json.loads(body)
        assert (info["length"], info["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        chunks = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
        _, body = fetch(conn, method="POST", body=chunks, encode_chunked=True)
        info = json.loads(body)
        assert (info["length"], info["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    finally:
        conn.close()


def test_five_megabyte_file_response(server, certs, tmp_path):
    size = 5 << 20
    conn = https(server.port, client_context(certs))
    try:
        resp, body = fetch(conn, f"/file?size={size}")
        assert resp.status == 200 and resp.getheader("Content-Length") == str(size)
        assert body == pattern(size)
        resp, body = fetch(conn)  # the framing held: the connection carries another request
        assert resp.status == 200
    finally:
        conn.close()
    out = tmp_path / "out.bin"
    result = curl(
        "--cacert", str(certs.ca.cert), "-o", str(out), f"https://127.0.0.1:{server.port}/file?size={size}"
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == pattern(size)


def test_plain_http_on_the_tls_port(server, certs):
    line = r"plain HTTP request on a TLS port from 127\.0\.0\.1:(\d+); answered 400"
    before = len(re.findall(line, server.log()))
    response = raw_request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert response.endswith(b"The plain HTTP request was sent to HTTPS port\n")
    wait_log(server, line)
    time.sleep(0.2)
    assert len(re.findall(line, server.log())) == before + 1  # one line per such connection
    conn = https(server.port, client_context(certs))
    assert fetch(conn)[0].status == 200  # and TLS clients are served as before
    conn.close()


def test_neither_tls_nor_http_is_closed(server):
    try:
        assert raw_request(server.port, b"\x00\x01\x02 not tls at all\r\n\r\n") == b""
    except ConnectionResetError:
        pass  # closed with its bytes unread
    wait_log(server, r"not a TLS handshake on a TLS port from 127\.0\.0\.1:\d+; closed")


# -- WSGI, one thread, short header timeout: quiet clients must not hold it ---------------------------------
@pytest.fixture(scope="module")
def one_thread(certs):
    proc = ServerProcess("peer_echo_wsgi:app", *tls_args(certs, "--threads", "1", "--header-timeout", "1"))
    yield proc.start()
    proc.stop()


def client_hello(certs: Certs) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_wsgi_over_tls(one_thread, certs):
    conn = https(one_thread.port, client_context(certs))
    try:
        info = json.loads(fetch(conn)[1])
        assert (info["wsgi.url_scheme"], info["REMOTE_ADDR"]) == ("https", "127.0.0.1")
        assert info["SERVER_PORT"] == str(one_thread.port)
    finally:
        conn.close()


def test_quiet_and_stalled_handshakes_hold_no_thread(one_thread, certs):
    hello = client_hello(certs)
    quiet = [socket.create_connection(("127.0.0.1", one_thread.port)) for _ in range(3)]
    stalled = socket.create_connection(("127.0.0.1", one_thread.port))
    stalled.sendall(hello[:20])  # part of a ClientHello, then nothing
    try:
        started = time.monotonic()
        conn = https(one_thread.port, client_context(certs))
        assert fetch(conn)[0].status == 200  # the only thread is free
        conn.close()
        assert time.monotonic() - started < 2
        for sock in [*quiet, stalled]:  # --header-timeout 1: closed by the worker's sweep
            sock.settimeout(5)
            assert sock.recv(100) == b""
        assert time.monotonic() - started < 4
    finally:
        for sock in [*quiet, stalled]:
            sock.close()


def test_slow_head_over_tls_gets_408(one_thread, certs):
    """The worker's sweep answers a head that stalls past --header-timeout, encrypted, then closes."""
    raw = socket.create_connection(("127.0.0.1", one_thread.port), timeout=5)
    with client_context(certs).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        response = b""
        try:
            while chunk := tls.recv(65536):
                response += chunk
        except ssl.SSLError:  # closed after the answer
            pass
    assert response.startswith(b"HTTP/1.1 408 "), response


# -- client certificates and versions ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def required(certs):
    proc = ServerProcess(
        "peer_echo:app", *tls_args(certs, "--ca-certs", str(certs.ca.cert), "--cert-reqs", "required")
    )
    yield proc.start()
    proc.stop()


def refused(port: int, context: ssl.SSLContext) -> bool:
    conn = https(port, context)
    try:
        fetch(conn)
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        conn.close()
    return False


def test_client_certificate_required(required, certs):
    conn = https(required.port, client_context(certs, certs.client))
    assert fetch(conn)[0].status == 200
    conn.close()
    assert refused(required.port, client_context(certs))  # none
    assert refused(required.port, client_context(certs, certs.stranger))  # from an unknown CA
    url = f"https://127.0.0.1:{required.port}/"
    ok = curl(
        "--cacert", str(certs.ca.cert), "--cert", str(certs.client.cert), "--key", str(certs.client.key), url
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["scheme"] == "https", ok.stderr
    assert curl("--cacert", str(certs.ca.cert), url).returncode != 0


@pytest.fixture(scope="module")
def optional_tls13(certs):
    args = tls_args(
        certs, "--ca-certs", str(certs.ca.cert), "--cert-reqs", "optional", "--ssl-min-version", "1.3"
    )
    proc = ServerProcess("peer_echo:app", *args)
    yield proc.start()
    proc.stop()


def test_client_certificate_optional(optional_tls13, certs):
    for cert in (None, certs.client):
        conn = https(optional_tls13.port, client_context(certs, cert))
        assert fetch(conn)[0].status == 200
        conn.close()
    assert refused(optional_tls13.port, client_context(certs, certs.stranger))  # sent, so verified


def test_minimum_version(optional_tls13, certs):
    old = client_context(certs)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert refused(optional_tls13.port, old)
    conn = https(optional_tls13.port, client_context(certs))
    assert fetch(conn)[0].status == 200 and conn.sock.version() == "TLSv1.3"
    conn.close()
    twelve = ServerProcess("peer_echo:app", *tls_args(certs)).start()  # the default minimum: 1.2
    try:
        conn = https(twelve.port, old)
        assert fetch(conn)[0].status == 200 and conn.sock.version() == "TLSv1.2"
        conn.close()
    finally:
        twelve.stop()


# -- certificates re-read on HUP ----------------------------------------------------------------------------
def test_hup_serves_the_new_certificate_and_old_connections_finish(certs, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(certs.server.cert, cert)
    shutil.copy(certs.server.key, key)
    server = ServerProcess(
        "peer_echo:app", "--workers", "1", "--certfile", str(cert), "--keyfile", str(key)
    ).start()
    context = client_context(certs)
    try:
        old = https(server.port, context)
        first = json.loads(fetch(old)[1])
        assert old.sock.getpeercert(binary_form=True) == certs.server.der()
        old.request("GET", "/?sleep=2000")  # in flight on the old worker across the reload
        shutil.copy(certs.server2.cert, cert)
        shutil.copy(certs.server2.key, key)
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            conn = https(server.port, context)
            info = json.loads(fetch(conn)[1])
            served = conn.sock.getpeercert(binary_form=True)
            conn.close()
            if served == certs.server2.der():
                break
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.1)
        assert info["pid"] != first["pid"]
        resp = old.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["pid"] == first["pid"]
        assert resp.getheader("Connection") == "close"  # its worker is draining
        old.close()
        # Broken files: the HUP is refused and the workers serving keep the certificate they have.
        cert.write_text("not a certificate\n")
        server.signal(signal.SIGHUP)
        wait_log(server, r"HUP: cannot re-read the settings \(cannot load the TLS files .*\)")
        time.sleep(0.5)
        conn = https(server.port, context)
        assert fetch(conn)[0].status == 200 and conn.sock.getpeercert(binary_form=True) == certs.server2.der()
        conn.close()
    finally:
        server.stop()


# -- settings ---------------------------------------------------------------------------------------------
def test_tls_settings_are_checked_at_launch(certs, tmp_path):
    def error(**flags) -> str:
        with pytest.raises(ConfigError) as exc:
            resolve(flags, {}, str(tmp_path))
        return str(exc.value)

    server, client = certs.server, certs.client
    assert error(keyfile=str(server.key)) == "keyfile needs certfile (TLS is off without it)"
    assert error(cert_reqs="required", ca_certs=str(certs.ca.cert)).startswith(
        "ca_certs, cert_reqs need certfile"
    )
    assert error(certfile=str(server.cert), keyfile=str(server.key), cert_reqs="2").startswith(
        "cert_reqs required needs ca_certs"
    )
    missing = error(certfile=str(tmp_path / "nope.pem"))
    assert missing.startswith("cannot load the TLS files") and "No such file or directory" in missing
    assert "KEY_VALUES_MISMATCH" in error(certfile=str(server.cert), keyfile=str(client.key))
    assert "cannot load the TLS files" in error(
        certfile=str(server.cert), keyfile=str(server.key), ca_certs=str(server.key)
    )
    assert error(ssl_min_version="1.1") == "--ssl-min-version must be one of 1.2, 1.3, got '1.1'"
    assert error(cert_reqs="maybe") == "--cert-reqs must be one of none, optional, required, got 'maybe'"
    good = resolve(
        {"certfile": str(server.cert), "keyfile": str(server.key), "ssl_min_version": "TLSv1_3"},
        {},
        str(tmp_path),
    )
    assert (good.ssl_min_version, good.cert_reqs) == ("1.3", "none")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ehttpd",
            "hello:app",
            "--check-config",
            "--certfile",
            str(tmp_path / "nope.pem"),
        ],
        cwd=ROOT / "tests" / "apps",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and result.stderr.startswith("ehttpd: error: cannot load the TLS files")
    assert result.stderr.count("\n") == 1


# -- the access log over TLS -------------------------------------------------------------------------------
def test_the_access_log_counts_the_body_bytes_sent_over_tls(certs, tmp_path):
    log = tmp_path / "access.log"
    fmt = "%(U)s %(s)s %(B)s"
    with ServerProcess(
        "hello:app", *tls_args(certs, "--access-log", str(log), "--access-log-format", fmt)
    ) as proc:
        conn = https(proc.port, client_context(certs))
        try:
            resp, body = fetch(conn, "/tls")
        finally:
            conn.close()
        assert resp.status == 200 and body
        deadline = time.monotonic() + 5
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert log.read_text().splitlines() == [f"/tls 200 {len(body)}"]
