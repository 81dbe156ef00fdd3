"""End-to-end: byte ranges on bytes and files, serve_file, and sendfile of a 1 GB sparse file."""

from __future__ import annotations

import email.parser
import email.policy
import http.client
import os
import subprocess
import threading
import time

import psutil
import pytest

from .helpers import ServerProcess
from .httpraw import RawClient, get

PATTERN = bytes(range(256)) * 40  # what /pattern serves: 10240 bytes, byte i is i % 256
SMALL = bytes(range(256)) * 16  # files/small.bin, 4096 bytes
GIB = 1 << 30
MIDDLE = GIB // 2
MARKER = b"MIDDLE-OF-A-GIGABYTE!!!\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    pub = root / "pub"
    (pub / "sub").mkdir(parents=True)
    (root / "secret.txt").write_bytes(b"top secret\n")
    (pub / "small.bin").write_bytes(SMALL)
    (pub / "page.txt").write_bytes(b"plain text\n")
    (pub / "sub" / "index.html").write_bytes(b"<p>index</p>\n")
    os.symlink(root / "secret.txt", pub / "escape.txt")
    with open(pub / "big.bin", "wb") as f:
        f.truncate(GIB)  # sparse: no disk space used, reads as zeros
        f.seek(MIDDLE)
        f.write(MARKER)
    return pub


@pytest.fixture(scope="module")
def server(files):
    srv = ServerProcess(
        "native_app", "--workers", "1", "--threads", "4", env={"EHTTPD_TEST_FILES": str(files)}
    )
    with srv:
        yield srv


def fetch(port: int, target: str, method: str = "GET", **headers: str):
    """One request with http.client: (response, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers={k.replace("_", "-"): v for k, v in headers.items()})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def multipart(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    return [(p["Content-Type"], p["Content-Range"], p.get_payload(decode=True)) for p in message.iter_parts()]


# -- ranges on a bytes body ------------------------------------------------------------------------------
def test_full_response_advertises_ranges(port):
    resp, body = fetch(port, "/pattern")
    assert resp.status == 200
    assert body == PATTERN
    assert resp.getheader("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(
    ("value", "start", "stop"),
    [
        ("bytes=256-511", 256, 512),
        ("bytes=0-0", 0, 1),
        ("bytes=10000-", 10000, 10240),
        ("bytes=10000-99999", 10000, 10240),
        ("bytes=-100", 10140, 10240),
        ("bytes=-20000", 0, 10240),  # a suffix longer than the body is the whole body
    ],
)
def test_single_range(port, value, start, stop):
    resp, body = fetch(port, "/pattern", Range=value)
    assert resp.status == 206
    assert body == PATTERN[start:stop]
    assert resp.getheader("Content-Range") == f"bytes {start}-{stop - 1}/10240"
    assert resp.getheader("Content-Length") == str(stop - start)


def test_multiple_ranges_are_multipart_byteranges(port):
    resp, body = fetch(port, "/pattern", Range="bytes=0-9, 5000-5009, -10")
    assert resp.status == 206
    ctype = resp.getheader("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary=")
    assert int(resp.getheader("Content-Length")) == len(body)
    octets = "application/octet-stream"
    assert multipart(ctype, body) == [
        (octets, "bytes 0-9/10240", PATTERN[:10]),
        (octets, "bytes 5000-5009/10240", PATTERN[5000:5010]),
        (octets, "bytes 10230-10239/10240", PATTERN[-10:]),
    ]


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ('"pattern-v1"', 206),
        ('"pattern-v2"', 200),
        ('W/"pattern-v1"', 200),
        ("Mon, 01 Jan 2024 00:00:00 GMT", 206),
        ("Tue, 02 Jan 2024 00:00:00 GMT", 200),
    ],
)
def test_if_range(port, if_range, status):
    resp, body = fetch(port, "/pattern", Range="bytes=0-9", If_Range=if_range)
    assert resp.status == status
    assert body == (PATTERN[:10] if status == 206 else PATTERN)


def test_416_when_no_range_is_satisfiable(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/pattern", {"Range": "bytes=10240-,20000-30000"})
        assert resp.status == 416
        assert resp.header("content-range") == "bytes */10240"
        assert resp.body == b""
        assert client.request("GET", "/").status == 200  # the connection goes on


@pytest.mark.parametrize("value", ["bytes=5-1", "bytes=abc", "lines=1-2", "bytes=1-2,x"])
def test_invalid_range_is_ignored(port, value):
    resp, body = fetch(port, "/pattern", Range=value)
    assert resp.status == 200
    assert body == PATTERN


def test_range_ignored_on_head_and_post(port):
    resp, body = fetch(port, "/pattern", "HEAD", Range="bytes=0-9")
    assert resp.status == 200
    assert resp.getheader("Content-Length") == "10240"
    assert body == b""


# -- ranges on files (sendfile) ---------------------------------------------------------------------------
def test_file_single_and_suffix_range(port):
    resp, body = fetch(port, "/files/small.bin", Range="bytes=1000-1999")
    assert (resp.status, body) == (206, SMALL[1000:2000])
    assert resp.getheader("Content-Range") == "bytes 1000-1999/4096"
    resp, body = fetch(port, "/files/small.bin", Range="bytes=-5")
    assert (resp.status, body) == (206, SMALL[-5:])


def test_file_multiple_ranges(port):
    resp, body = fetch(port, "/files/small.bin", Range="bytes=0-0,100-199,4000-")
    assert resp.status == 206
    assert int(resp.getheader("Content-Length")) == len(body)
    octets = "application/octet-stream"
    assert multipart(resp.getheader("Content-Type"), body) == [
        (octets, "bytes 0-0/4096", SMALL[:1]),
        (octets, "bytes 100-199/4096", SMALL[100:200]),
        (octets, "bytes 4000-4095/4096", SMALL[4000:]),
    ]


def test_file_multiple_ranges_keep_the_connection_in_sync(port):
    with RawClient(port) as client:
        for _ in range(3):
            resp = client.request("GET", "/files/small.bin", {"Range": "bytes=1-2,-3"})
            assert resp.status == 206
            assert len(resp.body) == int(resp.header("content-length"))
        assert client.request("GET", "/").body == b"Hello world\n"


def test_file_if_range_and_416(port):
    full, _ = fetch(port, "/files/small.bin")
    etag, modified = full.getheader("ETag"), full.getheader("Last-Modified")
    assert etag and modified
    resp, body = fetch(port, "/files/small.bin", Range="bytes=0-1", If_Range=etag)
    assert (resp.status, body) == (206, SMALL[:2])
    resp, body = fetch(port, "/files/small.bin", Range="bytes=0-1", If_Range='"stale"')
    assert (resp.status, body) == (200, SMALL)
    resp, body = fetch(port, "/files/small.bin", Range="bytes=9999-")
    assert resp.status == 416
    assert resp.getheader("Content-Range") == "bytes */4096"


# -- serve_file ------------------------------------------------------------------------------------------
def test_serve_file_basics(port):
    resp, body = fetch(port, "/files/page.txt")
    assert (resp.status, body) == (200, b"plain text\n")
    assert resp.getheader("Content-Type") == "text/plain"
    assert resp.getheader("Accept-Ranges") == "bytes"
    assert fetch(port, "/files/sub/")[1] == b"<p>index</p>\n"
    assert fetch(port, "/files/nope.txt")[0].status == 404
    assert fetch(port, "/files/sub/nope/")[0].status == 404


def test_serve_file_refuses_escapes(port):
    for target in ("/files/escape.txt", "/files/..%2fsecret.txt", "/files/%2e%2e/secret.txt"):
        resp = get(port, target)
        assert resp.status == 403, target
        assert b"secret" not in resp.body


def test_serve_file_head_and_methods(port):
    get_resp, _ = fetch(port, "/files/small.bin")
    head, body = fetch(port, "/files/small.bin", "HEAD")
    assert head.status == 200 and body == b""
    for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head.getheader(name) == get_resp.getheader(name), name
    resp, _ = fetch(port, "/files/small.bin", "POST")
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"


def test_serve_file_not_modified(port):
    etag = fetch(port, "/files/page.txt")[0].getheader("ETag")
    resp, body = fetch(port, "/files/page.txt", If_None_Match=f'"other", {etag}')
    assert (resp.status, body) == (304, b"")
    assert resp.getheader("ETag") == etag
    assert fetch(port, "/files/page.txt", If_None_Match='"other"')[0].status == 200


# -- a 1 GB file with sendfile -----------------------------------------------------------------------------
def tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def test_sendfile_of_a_1gb_sparse_file_keeps_memory_small(server, port):
    assert get(port, "/").status == 200  # warm up
    baseline = tree_rss(server.pid)
    peak = baseline
    curl = subprocess.Popen(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "60",
            "--output",
            "/dev/null",
            "--dump-header",
            "-",
            "--write-out",
            "\nsize=%{size_download} status=%{http_code}\n",
            f"http://127.0.0.1:{port}/big",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(server.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out, err = curl.communicate(timeout=90)
    finally:
        done.set()
        sampler.join()
        if curl.poll() is None:
            curl.kill()
            curl.wait()
    text = out.decode()
    assert curl.returncode == 0, err
    assert "Content-Length: 1073741824" in text
    assert f"size={GIB} status=200" in text
    growth = (peak - baseline) / 1e6
    assert growth < 50, f"server RSS grew by {growth:.0f} MB while sending 1 GB"
    assert peak < 200e6, f"server processes peaked at {peak / 1e6:.0f} MB RSS"


def test_range_in_the_middle_of_the_1gb_file(port):
    resp, body = fetch(port, "/big", Range=f"bytes={MIDDLE - 4}-{MIDDLE + len(MARKER) - 1}")
    assert resp.status == 206
    assert body == b"\0" * 4 + MARKER
    assert resp.getheader("Content-Range") == f"bytes {MIDDLE - 4}-{MIDDLE + len(MARKER) - 1}/{GIB}"


def test_multiple_ranges_across_the_1gb_file(port):
    resp, body = fetch(port, "/big", Range=f"bytes=0-3,{MIDDLE}-{MIDDLE + len(MARKER) - 1},-2")
    assert resp.status == 206
    parts = multipart(resp.getheader("Content-Type"), body)
    assert [p[1:] for p in parts] == [
        (f"bytes 0-3/{GIB}", b"\0" * 4),
        (f"bytes {MIDDLE}-{MIDDLE + len(MARKER) - 1}/{GIB}", MARKER),
        (f"bytes {GIB - 2}-{GIB - 1}/{GIB}", b"\0\0"),
    ]
