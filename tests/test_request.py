"""Request: target parts, percent-decoding, query strings, safe_path; and the Headers container."""

from __future__ import annotations

import pytest

from ehttpd import Headers, Request
from ehttpd.body import EMPTY_BODY


def req(target: str, method: str = "GET", headers=()) -> Request:
    return Request(method, target, "HTTP/1.1", Headers(headers), EMPTY_BODY, ("127.0.0.1", 5000))


# -- host --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "headers", "host"),
    [
        ("/", [("host", "shop.example:8080")], "shop.example:8080"),
        ("/", [], ""),  # HTTP/1.0 may send no Host
        (
            "http://origin.example:81/x?y=1",
            [("host", "other.example")],
            "origin.example:81",
        ),  # RFC 9112 §3.2.2
        ("http://origin.example?y=1", [("host", "other.example")], "origin.example"),
    ],
)
def test_host_is_the_field_or_the_absolute_form_authority(target, headers, host):
    assert req(target, headers=headers).host == host


def test_host_set_from_a_trusted_proxy_wins():
    r = req("/", headers=[("host", "127.0.0.1:8000")])
    r.host = "shop.example"
    assert r.host == "shop.example" and r.header("host") == "127.0.0.1:8000"


# -- target, path, query -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "raw_path", "path", "query_string"),
    [
        ("/", "/", "/", ""),
        ("/a/b?x=1", "/a/b", "/a/b", "x=1"),
        ("/a?", "/a", "/a", ""),
        ("/caf%C3%A9%20au%20lait", "/caf%C3%A9%20au%20lait", "/café au lait", ""),
        ("/a%2Fb", "/a%2Fb", "/a/b", ""),  # decoded, so use raw_path to tell %2F from /
        ("/bad%FFbyte", "/bad%FFbyte", "/bad\ufffdbyte", ""),  # invalid UTF-8 replaced, not an error
        ("/plus+sign?q=a+b", "/plus+sign", "/plus+sign", "q=a+b"),  # + is a space only in the query
        ("http://example.org/x/y?z=1", "/x/y", "/x/y", "z=1"),  # absolute-form
        ("http://example.org", "/", "/", ""),
        ("http://example.org?q=/files/x", "/", "/", "q=/files/x"),  # the first "/" is in the query
        ("*", "*", "*", ""),
        ("example.org:443", "example.org:443", "example.org:443", ""),  # CONNECT authority-form
        ("/q?a=1?b=2", "/q", "/q", "a=1?b=2"),
    ],
)
def test_target_parts(target, raw_path, path, query_string):
    r = req(target)
    assert r.raw_path == raw_path
    assert r.path == path
    assert r.query_string == query_string


def test_query_repeated_keys_plus_and_blanks():
    r = req("/s?a=1&b=x+y&a=2&c=%20z%26&empty=&flag&u=caf%C3%A9")
    assert r.query == {
        "a": ["1", "2"],
        "b": ["x y"],
        "c": [" z&"],
        "empty": [""],
        "flag": [""],
        "u": ["café"],
    }
    assert r.query_value("a") == "1"
    assert r.query_value("missing") is None
    assert r.query_value("missing", "d") == "d"
    assert r.query is r.query  # parsed once


def test_query_without_query_string():
    assert req("/").query == {}


# -- safe_path -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", ""),
        ("/index.html", "index.html"),
        ("/a/b/c.txt", "a/b/c.txt"),
        ("//a///b/", "a/b"),
        ("/a/./b", "a/b"),
        ("/a%20b/c", "a b/c"),
        ("/caf%C3%A9", "café"),
        ("/..foo/bar..", "..foo/bar.."),  # dots inside a name are fine
        ("/a/..", None),
        ("/../etc/passwd", None),
        ("/a/../../etc/passwd", None),  # refused, not normalised into etc/passwd
        ("/%2e%2e/etc/passwd", None),
        ("/%2E%2E%2fetc%2fpasswd", None),
        ("/a/..%2f..%2fsecret", None),
        ("/a%2f..%2f..%2fsecret", None),
        ("/a%00b", None),
        ("/a%5c..%5csecret", None),  # backslash
        ("/a\\b", None),
        ("/bad%FF", None),  # not UTF-8
        ("/files/x?y=../../z", "files/x"),  # the query is not part of the path
    ],
)
def test_safe_path(target, expected):
    assert req(target).safe_path() == expected


# -- misc ----------------------------------------------------------------------------------------------
def test_header_lookup_and_attributes():
    r = req("/x", "POST", [("host", "example.org"), ("x-a", "1"), ("x-a", "2")])
    assert r.header("Host") == "example.org"
    assert r.header("X-A") == "1"
    assert r.headers.get_all("x-a") == ["1", "2"]
    assert r.header("missing", "dflt") == "dflt"
    assert r.method == "POST"
    assert r.version == "HTTP/1.1"
    assert r.peer == ("127.0.0.1", 5000)
    assert r.scheme == "http"
    assert r.keep_alive
    assert r.body.read() == b""
    assert repr(r) == "<Request POST /x HTTP/1.1>"


# -- Headers -------------------------------------------------------------------------------------------
def test_headers_case_insensitive_get_and_order():
    h = Headers([("Content-Type", "text/plain"), ("X-One", "1"), ("x-one", "2")])
    assert h.get("content-type") == "text/plain"
    assert h.get("X-ONE") == "1"
    assert h.get_all("x-One") == ["1", "2"]
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert "CONTENT-TYPE" in h
    assert "nope" not in h
    assert 5 not in h
    assert len(h) == 3
    assert list(h) == [("Content-Type", "text/plain"), ("X-One", "1"), ("x-one", "2")]


def test_headers_set_replaces_every_field_in_place_of_the_first():
    h = Headers([("A", "1"), ("B", "x"), ("a", "2"), ("C", "y"), ("A", "3")])
    h.set("a", "new")
    assert h.items() == [("a", "new"), ("B", "x"), ("C", "y")]
    h.set("D", "d")
    assert h.items()[-1] == ("D", "d")


def test_headers_add_remove_setdefault_item_access():
    h = Headers()
    h.add("Set-Cookie", "a=1")
    h.add("Set-Cookie", "b=2")
    assert h.get_all("set-cookie") == ["a=1", "b=2"]
    assert h.setdefault("set-cookie", "c=3") == "a=1"
    assert h.setdefault("X-New", "v") == "v"
    assert h["x-new"] == "v"
    h["X-New"] = "w"
    assert h.get_all("x-new") == ["w"]
    del h["set-cookie"]
    assert "Set-Cookie" not in h
    h.remove("not-there")  # no error
    with pytest.raises(KeyError):
        h["set-cookie"]
    assert repr(h) == "Headers([('X-New', 'w')])"


def test_headers_items_is_a_copy():
    h = Headers([("A", "1")])
    items = h.items()
    items.append(("B", "2"))
    assert len(h) == 1
