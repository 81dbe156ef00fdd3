"""End-to-end: a real Flask application (tests/apps/flask_app.py) served by ehttpd over real sockets.

Routing, JSON, url-encoded forms, a 20 MB multipart upload streamed in, a chunked upload, a generator
response, send_file of a large file through wsgi.file_wrapper (sent with os.sendfile: Python never reads
the file), a byte range of it, and an error handler answering 500.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path

import pytest
import requests

from .helpers import ServerProcess

FILE_SIZE = 24 << 20
UPLOAD_SIZE = 20 << 20


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flask") / "big.bin"
    with open(path, "wb") as f:
        for _ in range(FILE_SIZE >> 20):
            f.write(os.urandom(1 << 20))
    return path


@pytest.fixture(scope="module")
def server(big_file):
    srv = ServerProcess(
        "flask_app:app", "--workers", "1", "--threads", "4", env={"EHTTPD_TEST_FILE": str(big_file)}
    )
    with srv:
        yield srv


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_routing_and_json(url):
    with requests.Session() as s:
        assert s.get(url + "/").text == "hello from flask"
        resp = s.get(url + "/user/ada/36?tag=a&tag=b")
        assert resp.json() == {"name": "ada", "number": 36, "args": {"tag": ["a", "b"]}}
        assert s.get(url + "/user/ada/not-a-number").status_code == 404
        resp = s.post(url + "/json", json={"list": [1, 2, 3], "text": "é"})
        assert resp.json() == {"received": {"list": [1, 2, 3], "text": "é"}, "type": "application/json"}
        assert s.get(url + "/json").status_code == 405


def test_url_encoded_form(url):
    resp = requests.post(url + "/form", data={"name": "Zoë & co", "tags": ["x", "y"]}, timeout=10)
    assert resp.json() == {"form": {"name": ["Zoë & co"], "tags": ["x", "y"]}}


def multipart(boundary: str, size: int):
    """A multipart/form-data body with a text field and a `size`-byte file, produced piece by piece."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nbig one\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, no CRLF-dash run to confuse the parser
    digest = hashlib.sha256()

    def body():
        yield head
        left = size
        while left:
            part = block[: min(left, len(block))]
            digest.update(part)
            left -= len(part)
            yield part
        yield tail

    return body(), len(head) + size + len(tail), digest


def test_20mb_multipart_upload_is_streamed_to_flask(server):
    boundary = "ehttpd-test-boundary"
    body, length, digest = multipart(boundary, UPLOAD_SIZE)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/upload",
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        resp = conn.getresponse()
        data = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200
    assert data == {"name": "big.bin", "size": UPLOAD_SIZE, "sha256": digest.hexdigest(), "note": "big one"}


def test_chunked_upload_reaches_flask(server):
    parts = [os.urandom(100_000) for _ in range(20)]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/raw", body=iter(parts), encode_chunked=True)
        data = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert data == {"size": 2_000_000, "sha256": hashlib.sha256(b"".join(parts)).hexdigest()}


def test_generator_response_is_chunked(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/generate?n=4")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert body == b"".join(f"line {i} of /generate\n".encode() for i in range(4))


def test_send_file_of_a_large_file(url, big_file):
    expected = hashlib.sha256(big_file.read_bytes()).hexdigest()
    with requests.get(url + "/download", stream=True, timeout=30) as resp:
        assert resp.headers["Content-Length"] == str(FILE_SIZE)
        digest = hashlib.sha256()
        for chunk in resp.iter_content(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == expected


def test_send_file_goes_through_sendfile_not_python_reads(url, big_file):
    expected = hashlib.sha256(big_file.read_bytes()).hexdigest()
    with requests.Session() as s:
        resp = s.get(url + "/download-counted", timeout=30)
        assert hashlib.sha256(resp.content).hexdigest() == expected
        assert resp.headers["Content-Length"] == str(FILE_SIZE)
        assert s.get(url + "/reads").json() == {"reads": 0}


def test_send_file_byte_range(url, big_file):
    resp = requests.get(url + "/download", headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert resp.status_code == 206
    with open(big_file, "rb") as f:
        f.seek(1000)
        assert resp.content == f.read(1000)


def test_error_handler_answers_500(server, url):
    resp = requests.get(url + "/boom", timeout=10)
    assert resp.status_code == 500
    assert resp.json() == {"error": "custom 500 handler", "original": "flask view failed"}
    assert requests.get(url + "/", timeout=10).status_code == 200
