"""PROXY protocol v1/v2: the sans-I/O parser byte by byte, then real servers behind a "proxy" that is this
test talking raw sockets, from an allowed address (127.0.0.1) and from one that is not allowed."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehttpd.proxyproto import V2_SIGNATURE, ProxyError, parse, starts_like_proxy, wanted

from .extproxy import CLIENT_HOST, client_from, haproxy
from .helpers import ServerProcess
from .tlscerts import client_context, make_certs

V1_TCP4 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
V1_TCP6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 8443\r\n"
V1_LONGEST = b"PROXY UNKNOWN " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def v2(command: int, family: int, body: bytes, version: int = 2) -> bytes:
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", len(body)) + body


def inet(src: str, dst: str, sport: int, dport: int) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return a.packed + b.packed + struct.pack("!HH", sport, dport)


V2_TCP4 = v2(1, 0x11, inet("192.0.2.1", "198.51.100.2", 56324, 443))
V2_TCP6 = v2(1, 0x21, inet("2001:db8::1", "2001:db8::2", 4711, 8443))
TLV = bytes([0x05, 0x00, 0x04]) + b"abcd"  # PP2_TYPE_UNIQUE_ID, 4 bytes


# -- the parser -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "source", "destination"),
    [
        (V1_TCP4, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
        (V1_TCP6, ("2001:db8::1", 4711), ("2001:db8::2", 8443)),
        (b"PROXY UNKNOWN\r\n", None, None),
        (V1_LONGEST, None, None),
        (b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", ("0.0.0.0", 0), ("255.255.255.255", 65535)),
        (V2_TCP4, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
        (V2_TCP6, ("2001:db8::1", 4711), ("2001:db8::2", 8443)),
        (v2(1, 0x11, inet("192.0.2.1", "198.51.100.2", 1, 2) + TLV), ("192.0.2.1", 1), ("198.51.100.2", 2)),
        (
            v2(1, 0x31, b"/run/a.sock".ljust(108, b"\0") + b"/run/b".ljust(108, b"\0")),
            "/run/a.sock",
            "/run/b",
        ),
        (v2(0, 0x00, b""), None, None),  # LOCAL: the proxy's own health check
        (v2(0, 0x11, inet("192.0.2.1", "198.51.100.2", 1, 2)), None, None),  # LOCAL ignores addresses
        (v2(1, 0x00, TLV), None, None),  # UNSPEC: use the real connection's addresses
    ],
)
def test_valid_headers_parse_whole_and_in_every_prefix(header, source, destination):
    assert len(V1_LONGEST) == 107
    for cut in range(len(header)):
        assert parse(header[:cut]) is None, cut  # a proper prefix: more bytes needed
    parsed = parse(header + REQUEST)
    assert parsed is not None
    assert (parsed.source, parsed.destination, parsed.consumed) == (source, destination, len(header))
    assert parsed.version == (1 if header.startswith(b"PROXY") else 2)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello
        b"PROXX TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
        b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",  # leading zero
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
        b"PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",  # an IPv6 address under TCP4
        b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",  # bare LF
        b"PROXY UNKNOWNX\r\n",
        b"PROXY " + b"1" * 101,  # 107 bytes and no CRLF
        b"\r\n\r\n\x00\r\nQUIX\n",
        v2(1, 0x11, inet("1.2.3.4", "1.2.3.4", 1, 2), version=1),
        v2(2, 0x11, inet("1.2.3.4", "1.2.3.4", 1, 2)),  # command 2
        v2(1, 0x41, b""),  # family 4
        v2(1, 0x13, b""),  # protocol 3
        v2(1, 0x12, inet("1.2.3.4", "1.2.3.4", 1, 2)),  # a datagram on a stream
        v2(1, 0x11, b"\x01\x02\x03\x04"),  # shorter than an INET block
        v2(1, 0x21, inet("1.2.3.4", "1.2.3.4", 1, 2)),  # INET6 with an INET-sized block
    ],
)
def test_invalid_headers_are_refused(data):
    with pytest.raises(ProxyError):
        parse(data)


def test_starts_like_proxy():
    assert starts_like_proxy(b"") is None
    assert starts_like_proxy(b"PROX") is None  # PROPFIND and PROXY part at the fourth byte
    assert starts_like_proxy(b"PROP") is False
    assert starts_like_proxy(b"PROXY ") is True
    assert starts_like_proxy(V2_SIGNATURE[:5]) is None
    assert starts_like_proxy(V2_SIGNATURE) is True
    assert starts_like_proxy(b"\r\n\r\nGET") is False
    assert starts_like_proxy(b"\x16\x03\x01") is False


@pytest.mark.parametrize(
    "header", [V1_TCP4, V1_LONGEST, V2_TCP6, v2(1, 0x11, inet("1.2.3.4", "1.2.3.4", 1, 2) + TLV * 40)]
)
def test_reading_wanted_bytes_at_a_time_completes_any_header(header):
    stream, buf = header + REQUEST, b""
    for _ in range(5):
        peeked = stream[len(buf) : len(buf) + wanted(buf)]
        parsed = parse(buf + peeked)
        if parsed is not None:
            assert parsed.consumed == len(header)
            return
        buf += peeked
    raise AssertionError("never completed")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"PROXY ", V2_SIGNATURE, b""]), st.binary(max_size=300))
def test_fuzz_parse_never_fails_otherwise(prefix, tail):
    data = prefix + tail
    try:
        parsed = parse(data)
    except ProxyError:
        return
    assert parsed is None or 0 < parsed.consumed <= len(data)


# -- real servers -------------------------------------------------------------------------------------------
def exchange(port: int, *pieces: bytes, pause: float = 0.0, timeout: float = 5.0) -> bytes:
    """Send the pieces (pausing between them), then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            s.sendall(piece)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def wait_log(server: ServerProcess, pattern: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, server.log()):
        assert time.monotonic() < deadline, f"no log line matching {pattern!r}:\n{server.log()[-2000:]}"
        time.sleep(0.05)


def body_json(response: bytes) -> dict:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), response
    return json.loads(body)


@pytest.fixture(scope="module")
def allowed():
    server = ServerProcess("peer_echo:app", "--workers", "1", "--threads", "2", "--proxy-protocol").start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "header", [V1_TCP4, V2_TCP4, v2(1, 0x11, inet("192.0.2.1", "198.51.100.2", 56324, 443) + TLV)]
)
def test_allowed_proxy_header_sets_the_peer(allowed, header):
    assert body_json(exchange(allowed.port, header + REQUEST))["peer"] == ["192.0.2.1", 56324]


def test_allowed_proxy_header_v6_and_local(allowed):
    assert body_json(exchange(allowed.port, V1_TCP6 + REQUEST))["peer"] == ["2001:db8::1", 4711]
    assert body_json(exchange(allowed.port, V2_TCP6 + REQUEST))["peer"] == ["2001:db8::1", 4711]
    # LOCAL and UNKNOWN: the connection's own address
    assert body_json(exchange(allowed.port, v2(0, 0, b"") + REQUEST))["peer"][0] == "127.0.0.1"
    assert body_json(exchange(allowed.port, b"PROXY UNKNOWN\r\n" + REQUEST))["peer"][0] == "127.0.0.1"


def test_header_in_pieces_slower_than_the_grace(allowed):
    """The header and the request dribble in: the connection is parked in between, and still served."""
    pieces = (V2_TCP4[:7], V2_TCP4[7:20], V2_TCP4[20:] + REQUEST[:5], REQUEST[5:])
    assert body_json(exchange(allowed.port, *pieces, pause=0.15))["peer"] == ["192.0.2.1", 56324]
    pieces = (b"PRO", b"XY TCP4 192.0.2.1 198.51", b".100.2 56324 443\r", b"\n" + REQUEST)
    assert body_json(exchange(allowed.port, *pieces, pause=0.15))["peer"] == ["192.0.2.1", 56324]


def read_response(s: socket.socket) -> bytes:
    """One response with a Content-Length from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def test_keep_alive_after_the_header_keeps_the_proxied_peer(allowed):
    with socket.create_connection(("127.0.0.1", allowed.port), timeout=5) as s:
        s.sendall(V1_TCP4)
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert body_json(read_response(s))["peer"] == ["192.0.2.1", 56324]
            time.sleep(0.15)  # idle: parked between requests


@pytest.mark.parametrize(
    "data",
    [
        REQUEST,  # no header at all from an address that must send one
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 99999\r\n" + REQUEST,
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n" + REQUEST,
        v2(1, 0x12, inet("192.0.2.1", "198.51.100.2", 1, 2)) + REQUEST,
        b"PROXY " + b"9" * 120 + b"\r\n" + REQUEST,
    ],
)
def test_allowed_peer_without_a_valid_header_gets_400_and_a_log_line(allowed, data):
    response = exchange(allowed.port, data)
    assert response.startswith(b"HTTP/1.1 400 "), response
    assert b"PROXY protocol header" in response
    wait_log(allowed, r"connection from 127\.0\.0\.1:\d+: invalid PROXY protocol header \(")


def test_silent_connections_do_not_hold_the_threads(allowed):
    """Two threads, four connections that send nothing: a proxied request is still answered at once."""
    silent = [socket.create_connection(("127.0.0.1", allowed.port)) for _ in range(4)]
    try:
        started = time.monotonic()
        assert body_json(exchange(allowed.port, V1_TCP4 + REQUEST, timeout=3))["peer"][0] == "192.0.2.1"
        assert time.monotonic() - started < 2
    finally:
        for s in silent:
            s.close()


@pytest.fixture(scope="module")
def disallowed():
    server = ServerProcess(
        "peer_echo:app", "--workers", "1", "--proxy-protocol", "--proxy-allow-ips", "10.9.9.9,192.0.2.0/24"
    ).start()
    yield server
    server.stop()


@pytest.mark.parametrize("header", [V1_TCP4, V2_TCP4])
def test_disallowed_peer_sending_a_header_is_refused(disallowed, header):
    response = exchange(disallowed.port, header + REQUEST)
    assert response.startswith(b"HTTP/1.1 403 "), response
    wait_log(disallowed, r"connection from 127\.0\.0\.1:\d+: PROXY protocol header from a peer not in "
             r"proxy_allow_ips; answered 403 and closed")  # fmt: skip


def test_disallowed_peer_without_a_header_is_served_as_itself(disallowed):
    assert body_json(exchange(disallowed.port, REQUEST))["peer"][0] == "127.0.0.1"
    # PROPFIND shares "PRO" with "PROXY ": the bytes that had to be read to tell them apart are kept
    response = exchange(
        disallowed.port, b"PRO", b"PFIND / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", pause=0.15
    )
    assert body_json(response)["peer"][0] == "127.0.0.1"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    server = ServerProcess(
        "peer_echo:app", "--workers", "1", "--proxy-protocol",
        "--certfile", str(certs.server.cert), "--keyfile", str(certs.server.key),
    ).start()  # fmt: skip
    yield server, certs
    server.stop()


def https_exchange(raw: socket.socket, context: ssl.SSLContext) -> tuple[dict, tuple]:
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(REQUEST)
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
        return body_json(response), tls.getsockname()


def test_proxy_header_then_tls(tls_server):
    """With TLS the header comes before the ClientHello; the handshake must still see every byte of it."""
    server, certs = tls_server
    for header in (V1_TCP4, V2_TCP4):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        raw.sendall(header)
        info, _ = https_exchange(raw, client_context(certs))
        assert (info["peer"], info["scheme"]) == (["192.0.2.1", 56324], "https")
    # no header from an allowed address: refused before any TLS
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            client_context(certs).wrap_socket(raw, server_hostname="127.0.0.1")


def test_behind_haproxy_passing_tls_through(tls_server, tmp_path):
    """HAProxy in TCP mode sends a PROXY v1 (first port) or v2 (second) header, then the client's TLS."""
    server, certs = tls_server
    proxy = haproxy(server.port, tmp_path).start()
    try:
        for port in proxy.ports:
            info, local = https_exchange(client_from(port), client_context(certs))
            assert (info["peer"], info["scheme"]) == ([CLIENT_HOST, local[1]], "https")
    finally:
        proxy.stop()


def test_forwarded_headers_trusted_after_proxy_only_for_a_trusted_source(allowed):
    """The peer a PROXY header names is what --forwarded-allow-ips is checked against."""
    xff = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n"
    untrusted = body_json(exchange(allowed.port, V1_TCP4 + xff))  # 192.0.2.1 is no trusted proxy
    assert untrusted["peer"] == ["192.0.2.1", 56324]
    trusted = b"PROXY TCP4 127.0.0.1 127.0.0.1 4000 80\r\n"
    assert body_json(exchange(allowed.port, trusted + xff))["peer"] == ["203.0.113.5", 0]
