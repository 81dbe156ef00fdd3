"""Byte ranges (RFC 9110 §14) on bytes and file bodies: parsing, If-Range, 206, multipart and 416."""

from __future__ import annotations

import email.parser
import email.policy
import os
import time
from email.utils import formatdate

import pytest

from ehttpd import FileBody, Headers, Request, Response
from ehttpd.body import EMPTY_BODY
from ehttpd.ranges import MAX_RANGES, MultipartFileBody, if_range_matches, parse_range, with_ranges

DATA = bytes(range(256)) * 4  # 1024 bytes; byte i is i % 256


def request(method: str = "GET", **headers: str) -> Request:
    fields = Headers((k.replace("_", "-").lower(), v) for k, v in headers.items())
    return Request(method, "/", "HTTP/1.1", fields, EMPTY_BODY, ("127.0.0.1", 1))


def bytes_response(data: bytes = DATA) -> Response:
    return Response.ok(data, content_type="application/octet-stream")


def parse_multipart(resp: Response, body: bytes) -> list[tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part, parsed by the standard library's MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + resp.header("Content-Type").encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    return [(p["Content-Type"], p["Content-Range"], p.get_payload(decode=True)) for p in message.iter_parts()]


def file_bytes(body) -> bytes:
    """What the writer would send for a file body: FileBody ranges read back, bytes as they are."""
    if isinstance(body, FileBody):
        body.file.seek(body.offset)
        return body.file.read(body.length)
    out = b""
    for item in body:
        out += file_bytes(item) if isinstance(item, FileBody) else item
    return out


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    old = time.time() - 3600  # an hour old, so Last-Modified is a strong validator
    os.utime(path, (old, old))
    return path


# -- parse_range ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", [(0, 1)]),
        ("bytes=0-99", [(0, 100)]),
        ("bytes=100-", [(100, 1000)]),
        ("bytes=990-5000", [(990, 1000)]),  # last-pos beyond the end is clamped
        ("bytes=-1", [(999, 1000)]),
        ("bytes=-100", [(900, 1000)]),
        ("bytes=-5000", [(0, 1000)]),  # a suffix longer than the representation is all of it
        ("BYTES=1-2", [(1, 3)]),  # the unit is case-insensitive
        ("bytes=0-1, 5-6 ,\t9-9", [(0, 2), (5, 7), (9, 10)]),
        ("bytes=0-1,,5-6", [(0, 2), (5, 7)]),  # empty list elements are ignored
        ("bytes=5-6,0-1", [(5, 7), (0, 2)]),  # order kept when nothing overlaps
        ("bytes=999-999", [(999, 1000)]),
        ("bytes=1000-", []),  # starts at the end: unsatisfiable
        ("bytes=1000-2000,5000-", []),
        ("bytes=-0", []),  # an empty suffix is unsatisfiable
        ("bytes=1000-,0-0", [(0, 1)]),  # the unsatisfiable one is dropped
        ("bytes=0-" + "9" * 30, [(0, 1000)]),  # huge numbers do not break parsing
        ("bytes=" + "9" * 30 + "-", []),
    ],
)
def test_parse_range(value, expected):
    assert parse_range(value, 1000) == expected


@pytest.mark.parametrize(
    "value",
    [
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-a",
        "bytes=5-4",  # last before first: the whole header is invalid
        "bytes=0-1,5-4",
        "bytes=1 - 2",
        "bytes = 1-2",
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=+1-2",
        "items=0-1",
        "0-1",
        "bytes=" + ",".join(["0-0"] * (MAX_RANGES + 1)),  # too many ranges: ignored
    ],
)
def test_parse_range_invalid(value):
    assert parse_range(value, 1000) is None


def test_overlapping_ranges_are_merged_when_they_add_up_to_more_than_the_whole():
    assert parse_range("bytes=0-,0-,0-", 1000) == [(0, 1000)]
    assert parse_range("bytes=500-,0-600,-10", 1000) == [(0, 1000)]
    assert parse_range("bytes=0-9,5-14", 1000) == [(0, 10), (5, 15)]  # small overlap kept as asked


def test_parse_range_on_empty_representation():
    assert parse_range("bytes=0-", 0) == []
    assert parse_range("bytes=-5", 0) == []


# -- with_ranges on bytes ---------------------------------------------------------------------------------
def test_no_range_gives_full_response_with_accept_ranges():
    resp = with_ranges(request(), bytes_response())
    assert resp.status == 200
    assert resp.body == DATA
    assert resp.header("Accept-Ranges") == "bytes"


def test_single_range_on_bytes():
    resp = with_ranges(request(range="bytes=10-19"), bytes_response())
    assert resp.status == 206
    assert resp.reason == "Partial Content"
    assert resp.body == DATA[10:20]
    assert resp.header("Content-Range") == "bytes 10-19/1024"
    assert resp.header("Content-Type") == "application/octet-stream"
    assert resp.content_length == 10


def test_suffix_and_open_ended_ranges_on_bytes():
    assert with_ranges(request(range="bytes=-4"), bytes_response()).body == DATA[-4:]
    resp = with_ranges(request(range="bytes=-5000"), bytes_response())
    assert resp.status == 206
    assert resp.body == DATA
    assert resp.header("Content-Range") == "bytes 0-1023/1024"
    resp = with_ranges(request(range="bytes=1000-"), bytes_response())
    assert resp.body == DATA[1000:]
    assert resp.header("Content-Range") == "bytes 1000-1023/1024"


def test_multiple_ranges_on_bytes_are_multipart():
    resp = with_ranges(request(range="bytes=0-3,100-103,-2"), bytes_response())
    assert resp.status == 206
    assert resp.header("Content-Type").startswith("multipart/byteranges; boundary=")
    assert resp.header("Content-Range") is None
    assert resp.content_length == len(resp.body)
    parts = parse_multipart(resp, resp.body)
    assert parts == [
        ("application/octet-stream", "bytes 0-3/1024", DATA[0:4]),
        ("application/octet-stream", "bytes 100-103/1024", DATA[100:104]),
        ("application/octet-stream", "bytes 1022-1023/1024", DATA[1022:]),
    ]


def test_unsatisfiable_range_is_416_with_the_length():
    resp = with_ranges(request(range="bytes=5000-"), bytes_response())
    assert resp.status == 416
    assert resp.header("Content-Range") == "bytes */1024"
    assert resp.body == b""


@pytest.mark.parametrize("value", ["bytes=5-4", "bytes=x", "pages=1-2", "bytes=1-2,oops"])
def test_invalid_range_is_ignored(value):
    resp = with_ranges(request(range=value), bytes_response())
    assert resp.status == 200
    assert resp.body == DATA


def test_two_range_fields_are_ignored():
    req = request()
    req.headers.add("range", "bytes=0-1")
    req.headers.add("range", "bytes=2-3")
    assert with_ranges(req, bytes_response()).status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_untouched(method):
    resp = with_ranges(request(method, range="bytes=0-1"), bytes_response())
    assert resp.status == 200
    assert resp.header("Accept-Ranges") is None


def test_head_gets_accept_ranges_but_full_framing():
    resp = with_ranges(request("HEAD", range="bytes=0-1"), bytes_response())
    assert resp.status == 200
    assert resp.content_length == len(DATA)
    assert resp.header("Accept-Ranges") == "bytes"


def test_other_status_or_streamed_body_untouched():
    resp = with_ranges(request(range="bytes=0-1"), Response(404, b"not here"))
    assert resp.status == 404
    assert resp.header("Accept-Ranges") is None
    stream = Response.ok(iter([b"a", b"b"]))
    assert with_ranges(request(range="bytes=0-1"), stream) is stream
    assert stream.header("Accept-Ranges") is None


def test_empty_body_ignores_range():
    resp = with_ranges(request(range="bytes=-5"), bytes_response(b""))
    assert resp.status == 200


# -- If-Range ------------------------------------------------------------------------------------------
def test_if_range_etag():
    def tagged():
        return bytes_response().set_header("ETag", '"v1"')

    assert with_ranges(request(range="bytes=0-1", if_range='"v1"'), tagged()).status == 206
    assert with_ranges(request(range="bytes=0-1", if_range='"v2"'), tagged()).status == 200
    # Weak tags never match in If-Range (strong comparison).
    assert with_ranges(request(range="bytes=0-1", if_range='W/"v1"'), tagged()).status == 200
    weak = bytes_response().set_header("ETag", 'W/"v1"')
    assert with_ranges(request(range="bytes=0-1", if_range='W/"v1"'), weak).status == 200
    assert with_ranges(request(range="bytes=0-1", if_range='"v1"'), bytes_response()).status == 200


def test_if_range_date():
    old = formatdate(time.time() - 3600, usegmt=True)
    other = formatdate(time.time() - 7200, usegmt=True)

    def dated():
        return bytes_response().set_header("Last-Modified", old)

    assert with_ranges(request(range="bytes=0-1", if_range=old), dated()).status == 206
    assert with_ranges(request(range="bytes=0-1", if_range=other), dated()).status == 200
    assert with_ranges(request(range="bytes=0-1", if_range="not a date"), dated()).status == 200
    assert with_ranges(request(range="bytes=0-1", if_range=old), bytes_response()).status == 200


def test_if_range_date_modified_just_now_is_weak():
    now = formatdate(time.time() + 5, usegmt=True)  # not yet a second old: weak, so no match
    resp = bytes_response().set_header("Last-Modified", now)
    assert not if_range_matches(now, resp)


# -- file bodies ---------------------------------------------------------------------------------------------
def test_file_gets_validators(data_file):
    resp = with_ranges(request(), Response.file(data_file))
    try:
        assert resp.status == 200
        assert resp.header("ETag").startswith('"') and resp.header("ETag").endswith('"')
        assert resp.header("Last-Modified") == formatdate(os.stat(data_file).st_mtime, usegmt=True)
        assert resp.header("Accept-Ranges") == "bytes"
    finally:
        resp.body.close()


def test_file_keeps_validators_the_app_set(data_file):
    resp = Response.file(data_file).set_header("ETag", '"mine"')
    resp = with_ranges(request(), resp)
    resp.body.close()
    assert resp.header("ETag") == '"mine"'


def test_single_range_on_file_stays_a_file(data_file):
    resp = with_ranges(request(range="bytes=100-199"), Response.file(data_file))
    assert resp.status == 206
    assert isinstance(resp.body, FileBody)
    assert (resp.body.offset, resp.body.length) == (100, 100)
    assert resp.header("Content-Range") == "bytes 100-199/1024"
    assert file_bytes(resp.body) == DATA[100:200]
    resp.body.close()
    assert resp.body.file.closed


def test_suffix_range_on_file(data_file):
    resp = with_ranges(request(range="bytes=-24"), Response.file(data_file))
    assert resp.header("Content-Range") == "bytes 1000-1023/1024"
    assert file_bytes(resp.body) == DATA[-24:]
    resp.body.close()


def test_range_of_a_file_body_that_is_itself_a_slice(data_file):
    f = open(data_file, "rb")  # noqa: SIM115 - closed through the FileBody
    resp = with_ranges(request(range="bytes=0-9"), Response(200, FileBody(f, 500, 100)))
    assert resp.header("Content-Range") == "bytes 0-9/100"
    assert file_bytes(resp.body) == DATA[500:510]
    resp.body.close()


def test_multiple_ranges_on_file_are_sendfile_parts(data_file):
    resp = with_ranges(request(range="bytes=0-9,-10"), Response.file(data_file))
    assert resp.status == 206
    body = resp.body
    assert isinstance(body, MultipartFileBody)
    items = list(body)
    assert [type(i) for i in items] == [bytes, FileBody, bytes, FileBody, bytes]
    assert not any(i.owned for i in items if isinstance(i, FileBody))  # parts never close the file
    content = file_bytes(items)
    assert resp.content_length == len(content)
    parts = parse_multipart(resp, content)
    ctype = "application/octet-stream"
    assert parts == [(ctype, "bytes 0-9/1024", DATA[:10]), (ctype, "bytes 1014-1023/1024", DATA[-10:])]
    body.close()
    assert body.file_body.file.closed


def test_unsatisfiable_range_on_file_closes_it(data_file):
    full = Response.file(data_file)
    resp = with_ranges(request(range="bytes=2000-"), full)
    assert resp.status == 416
    assert resp.header("Content-Range") == "bytes */1024"
    assert full.body.file.closed


def test_if_range_with_the_file_etag(data_file):
    probe = with_ranges(request(), Response.file(data_file))
    probe.body.close()
    etag, modified = probe.header("ETag"), probe.header("Last-Modified")
    for validator in (etag, modified):
        resp = with_ranges(request(range="bytes=0-0", if_range=validator), Response.file(data_file))
        resp.body.close()
        assert resp.status == 206
    os.utime(data_file, None)  # modified now: both validators change
    resp = with_ranges(request(range="bytes=0-0", if_range=etag), Response.file(data_file))
    resp.body.close()
    assert resp.status == 200
