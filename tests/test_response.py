"""Response: constructors, header helpers, body kinds and their known length; FileBody ownership."""

from __future__ import annotations

import json

import pytest

from ehttpd import FileBody, Headers, Response


def test_defaults():
    r = Response()
    assert r.status == 200
    assert r.reason == "OK"
    assert r.body == b""
    assert r.content_length == 0
    assert len(r.headers) == 0
    assert repr(r) == "<Response 200 OK>"


def test_str_body_is_utf8_text():
    r = Response(200, "héllo")
    assert r.body == "héllo".encode()
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert Response(200, "x", content_type="text/csv").header("content-type") == "text/csv"


def test_custom_and_unknown_reason():
    assert Response(200, reason="Fine").reason == "Fine"
    assert Response(299).reason == "Unknown"
    assert Response(418).reason == "I'm a Teapot"


def test_headers_given_as_pairs_or_headers_object():
    h = Headers([("X-A", "1")])
    r = Response(200, b"", h)
    assert r.headers is h
    r = Response(200, b"", [("X-A", "1"), ("X-A", "2")])
    assert r.headers.get_all("x-a") == ["1", "2"]


def test_header_helpers_chain():
    r = Response.ok(b"x").set_header("X-A", "1").add_header("X-A", "2").add_header("X-B", "3")
    assert r.headers.get_all("X-A") == ["1", "2"]
    r.set_header("x-a", "only")
    assert r.headers.get_all("X-A") == ["only"]
    assert r.remove_header("X-B").header("X-B") is None
    assert r.header("missing", "d") == "d"


def test_content_length_of_each_body_kind(tmp_path):
    assert Response.ok(b"12345").content_length == 5
    assert Response.ok(bytearray(b"123")).content_length == 3
    assert Response.ok(iter([b"a"])).content_length is None
    declared = Response.ok(iter([b"abc"])).set_header("Content-Length", "3")
    assert declared.content_length == 3
    bogus = Response.ok(iter([b"abc"])).set_header("Content-Length", "-3")
    assert bogus.content_length is None
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")
    r = Response.file(path)
    assert r.content_length == 10
    r.body.close()


def test_simple_constructors():
    assert Response.ok(b"x", "text/x").header("Content-Type") == "text/x"
    t = Response.text("hi", 201)
    assert (t.status, t.body, t.header("Content-Type")) == (201, b"hi", "text/plain; charset=utf-8")
    h = Response.html("<p>é</p>")
    assert h.body == "<p>é</p>".encode() and h.header("Content-Type") == "text/html; charset=utf-8"
    j = Response.json({"a": [1, "é"]}, 422)
    assert j.status == 422
    assert json.loads(j.body) == {"a": [1, "é"]}
    assert j.header("Content-Type") == "application/json"


def test_created_and_no_content():
    c = Response.created("/things/1", b"made")
    assert (c.status, c.header("Location"), c.body) == (201, "/things/1", b"made")
    assert Response.created().header("Location") is None
    n = Response.no_content()
    assert (n.status, n.body) == (204, b"")


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (Response.moved_permanently, 301),
        (Response.found, 302),
        (Response.see_other, 303),
        (Response.temporary_redirect, 307),
        (Response.permanent_redirect, 308),
    ],
)
def test_redirects(make, status):
    r = make("/there?x=1")
    assert r.status == status
    assert r.header("Location") == "/there?x=1"


def test_redirect_refuses_other_statuses():
    assert Response.redirect("/x").status == 302
    with pytest.raises(ValueError):
        Response.redirect("/x", 200)


def test_error_constructors():
    assert Response.bad_request().status == 400
    assert Response.bad_request("nope").body == b"nope\n"
    u = Response.unauthorized()
    assert u.status == 401 and u.header("WWW-Authenticate") == 'Basic realm="ehttpd"'
    assert Response.unauthorized('Bearer realm="x"').header("www-authenticate") == 'Bearer realm="x"'
    assert Response.forbidden().status == 403
    assert Response.not_found().status == 404
    m = Response.method_not_allowed(["GET", "HEAD"])
    assert m.status == 405 and m.header("Allow") == "GET, HEAD"
    assert Response.payload_too_large().status == 413
    rn = Response.range_not_satisfiable(1234)
    assert rn.status == 416 and rn.header("Content-Range") == "bytes */1234"
    assert Response.internal_error().status == 500
    s = Response.service_unavailable(30)
    assert s.status == 503 and s.header("Retry-After") == "30"
    assert Response.service_unavailable().header("Retry-After") is None


def test_file_guesses_content_type_and_accepts_an_override(tmp_path):
    (tmp_path / "page.html").write_text("<p>")
    (tmp_path / "blob").write_bytes(b"\0")
    r = Response.file(tmp_path / "page.html")
    assert r.header("Content-Type") == "text/html"
    assert isinstance(r.body, FileBody) and r.body.offset == 0 and r.body.length == 3
    r.body.close()
    r = Response.file(str(tmp_path / "blob"))
    assert r.header("Content-Type") == "application/octet-stream"
    r.body.close()
    r = Response.file(tmp_path / "blob", content_type="x/y")
    assert r.header("Content-Type") == "x/y"
    r.body.close()


def test_file_missing_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        Response.file(tmp_path / "nope")


def test_file_body_slice_and_ownership(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    f = open(path, "rb")  # noqa: SIM115 - the test checks who closes it
    part = FileBody(f, 40)
    assert part.length == 60
    borrowed = FileBody(f, 0, 10, owned=False)
    borrowed.close()
    assert not f.closed
    part.close()
    assert f.closed
