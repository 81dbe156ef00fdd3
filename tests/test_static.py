"""serve_file: mapping a request path into a directory, refusals, validators, 304 and ranges."""

from __future__ import annotations

import os

import pytest

from ehttpd import FileBody, Headers, Request
from ehttpd.body import EMPTY_BODY
from ehttpd.static import serve_file


def req(target: str, method: str = "GET", **headers: str) -> Request:
    fields = Headers((k.replace("_", "-").lower(), v) for k, v in headers.items())
    return Request(method, target, "HTTP/1.1", fields, EMPTY_BODY, ("127.0.0.1", 1))


@pytest.fixture
def root(tmp_path):
    pub = tmp_path / "pub"
    (pub / "docs").mkdir(parents=True)
    (pub / "a.txt").write_bytes(b"alpha\n")
    (pub / "docs" / "index.html").write_bytes(b"<p>docs</p>")
    (pub / "empty").mkdir()
    (tmp_path / "secret").write_bytes(b"no")
    os.symlink(tmp_path / "secret", pub / "link-out")
    os.symlink(pub / "a.txt", pub / "link-in")
    return pub


def body_of(resp) -> bytes:
    if isinstance(resp.body, FileBody):
        try:
            resp.body.file.seek(resp.body.offset)
            return resp.body.file.read(resp.body.length)
        finally:
            resp.body.close()
    return resp.body


def test_serves_a_file_with_type_and_validators(root):
    resp = serve_file(req("/a.txt"), root)
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/plain"
    assert resp.header("ETag") and resp.header("Last-Modified")
    assert resp.header("Accept-Ranges") == "bytes"
    assert body_of(resp) == b"alpha\n"


def test_prefix_mount(root):
    assert body_of(serve_file(req("/static/a.txt"), root, prefix="/static/")) == b"alpha\n"
    assert serve_file(req("/a.txt"), root, prefix="/static").status == 404
    assert serve_file(req("/staticx/a.txt"), root, prefix="/static").status == 404


def test_directory_index_and_missing(root):
    assert body_of(serve_file(req("/docs/"), root)) == b"<p>docs</p>"
    moved = serve_file(req("/docs?x=1"), root)  # as nginx: relative links in the index resolve inside
    assert (moved.status, moved.header("Location")) == (301, "/docs/?x=1")
    assert serve_file(req("/a.txt/"), root).status == 404  # a file is not a directory
    assert serve_file(req("/empty/"), root).status == 404
    assert serve_file(req("/nope"), root).status == 404


@pytest.mark.parametrize(
    "target", ["/../secret", "/%2e%2e/secret", "/docs/..%2f..%2fsecret", "/link-out", "/a%00"]
)
def test_escapes_are_forbidden(root, target):
    assert serve_file(req(target), root).status == 403


def test_symlink_inside_root_is_fine(root):
    assert body_of(serve_file(req("/link-in"), root)) == b"alpha\n"


def test_methods(root):
    head = serve_file(req("/a.txt", "HEAD"), root)
    assert head.status == 200 and head.content_length == 6
    head.body.close()
    post = serve_file(req("/a.txt", "POST"), root)
    assert post.status == 405 and post.header("Allow") == "GET, HEAD"


def test_if_none_match_gives_304(root):
    etag = serve_file(req("/a.txt"), root)
    tag = etag.header("ETag")
    etag.body.close()
    for value in (tag, f'"x", {tag}', f"W/{tag}", "*"):
        resp = serve_file(req("/a.txt", if_none_match=value), root)
        assert resp.status == 304, value
        assert resp.header("ETag") == tag
        assert resp.body == b""
    assert serve_file(req("/a.txt", if_none_match='"other"'), root).status == 200


def test_range(root):
    resp = serve_file(req("/a.txt", range="bytes=1-3"), root)
    assert resp.status == 206
    assert resp.header("Content-Range") == "bytes 1-3/6"
    assert body_of(resp) == b"lph"
