"""The request parser and chunked decoder, driven the way a server drives them, three ways per case.

Every case in tests/corpus.py is fed whole, byte by byte, and in seeded random splits; the outcome (the
parsed requests, or the status of the error) must be the same each way.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from ehttpd.chunked import ChunkedDecoder
from ehttpd.errors import HTTPError
from ehttpd.parser import DEFAULT_LIMITS, Limits, RequestHead, find_head, parse_head
from tests.corpus import BROWSER_GET, INVALID, LIMITS, VALID, Req

RANDOM_SEEDS = 5


@dataclass
class Outcome:
    """What a server loop made of a byte stream."""

    requests: list[tuple[RequestHead, bytes, list[tuple[str, str]]]] = field(default_factory=list)
    error: HTTPError | None = None
    leftover: bytes = b""  # bytes not consumed: after a close, or a request cut short by the end of input
    in_request: bool = False  # the input ended inside a request (head or body)
    closed: bool = False  # a request without keep-alive ended the connection


def drive(pieces: Iterable[bytes], limits: Limits = LIMITS) -> Outcome:
    """Simulate a server's read loop: accumulate, find_head until >= 0, parse_head, then read the body."""
    out = Outcome()
    buf = bytearray()
    head: RequestHead | None = None
    decoder: ChunkedDecoder | None = None
    body = bytearray()
    try:
        for piece in pieces:
            buf += piece
            while not out.closed:
                if head is None:
                    end = find_head(buf, limits)
                    if end < 0:
                        break
                    head = parse_head(buf, end, limits)
                    del buf[:end]
                    decoder = ChunkedDecoder(limits) if head.chunked else None
                    body = bytearray()
                if decoder is not None:
                    while not decoder.done:
                        data = decoder.decode(buf)
                        if data is None:
                            break
                        body += data
                    if not decoder.done:
                        break
                    trailers = decoder.trailers
                else:
                    missing = (head.content_length or 0) - len(body)
                    body += buf[:missing]
                    del buf[:missing]
                    if len(body) < (head.content_length or 0):
                        break
                    trailers = []
                out.requests.append((head, bytes(body), trailers))
                out.closed = not head.keep_alive
                head = None
    except HTTPError as exc:
        out.error = exc
    out.leftover = bytes(buf)
    out.in_request = head is not None or (bool(buf) and not out.closed)
    return out


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_split(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, min(len(data) - 1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def feeds(data: bytes, mode: str, case_index: int) -> list[list[bytes]]:
    if mode == "whole":
        return [whole(data)]
    if mode == "bytewise":
        return [bytewise(data)]
    return [random_split(data, case_index * 1000 + seed) for seed in range(RANDOM_SEEDS)]


MODES = ["whole", "bytewise", "random"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text)[:60].strip("-")


def assert_request(got: tuple[RequestHead, bytes, list[tuple[str, str]]], want: Req) -> None:
    head, body, trailers = got
    assert (head.method, head.target, head.version) == (want.method, want.target, want.version)
    assert head.headers == list(want.headers)
    assert head.content_length == want.content_length
    assert head.chunked is want.chunked
    assert head.keep_alive is want.keep_alive
    assert head.expect_continue is want.expect_continue
    assert body == want.body
    assert trailers == list(want.trailers)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("index", "data", "expected"),
    [pytest.param(i, data, expected, id=name) for i, (name, data, expected) in enumerate(VALID)],
)
def test_valid(index: int, data: bytes, expected: list[Req], mode: str) -> None:
    for pieces in feeds(data, mode, index):
        out = drive(pieces)
        assert out.error is None, f"{out.error.status} {out.error.reason}"
        assert len(out.requests) == len(expected)
        for got, want in zip(out.requests, expected, strict=True):
            assert_request(got, want)
        assert not out.in_request
        if not out.closed:
            assert out.leftover == b""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("index", "data", "status", "rule"),
    [
        pytest.param(i, data, status, rule, id=f"{i:03d}-{status}-{_slug(rule)}")
        for i, (data, status, rule) in enumerate(INVALID)
    ],
)
def test_invalid(index: int, data: bytes, status: int, rule: str, mode: str) -> None:
    for pieces in feeds(data, mode, index):
        out = drive(pieces)
        assert out.error is not None, (
            f"accepted ({len(out.requests)} requests, waiting={out.in_request}): {rule}"
        )
        assert out.error.status == status, f"{out.error.status} {out.error.reason!r}, wanted {status}: {rule}"
        assert out.error.reason


def test_corpus_size() -> None:
    assert len(INVALID) >= 60
    assert len({data for data, _, _ in INVALID}) == len(INVALID), "duplicate invalid cases"
    assert len({name for name, _, _ in VALID}) == len(VALID)


def test_head_bytes_counts_leading_empty_lines() -> None:
    data = b"\r\n\r\n" + BROWSER_GET
    end = find_head(data)
    assert end == len(data)
    assert parse_head(data, end).head_bytes == len(data)


def test_find_head_needs_more_on_partial_terminator() -> None:
    for cut in range(1, 4):
        assert find_head(BROWSER_GET[:-cut]) == -1


def test_incomplete_input_is_not_an_error() -> None:
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel"
    for cut in range(1, len(data)):
        out = drive(bytewise(data[:cut]))
        assert out.error is None
        assert out.in_request or out.requests == []


def test_default_limits_reject_huge_head_early() -> None:
    with pytest.raises(HTTPError) as info:
        find_head(b"GET /" + b"a" * DEFAULT_LIMITS.max_request_line, DEFAULT_LIMITS)
    assert info.value.status == 414
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: " + b"v" * DEFAULT_LIMITS.max_header_bytes
    with pytest.raises(HTTPError) as info:
        find_head(head, DEFAULT_LIMITS)
    assert info.value.status == 431


def test_chunked_decoder_max_bytes_and_done() -> None:
    decoder = ChunkedDecoder(LIMITS)
    buf = bytearray(b"a\r\n0123456789\r\n0\r\nT: 1\r\n\r\nnext")
    parts = []
    while data := decoder.decode(buf, max_bytes=4):
        parts.append(data)
    assert parts == [b"0123", b"4567", b"89"]
    assert decoder.done and decoder.trailers == [("t", "1")]
    assert decoder.decode(buf) == b""
    assert buf == b"next"  # the next pipelined request is left alone


# Several faults at once: the status is that of the fault that shows first while the bytes arrive, however
# they are split. (The first case was found by tests/test_parser_fuzz.py.)
MULTI_FAULT = [
    (b"\rGET /" + b"a" * 90 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),  # bare CR; line of 101 bytes
    (b"GET / HTTP/2.0\r\nX: a\nb\r\n\r\n", 400),  # a bare LF shows before the version can be judged
    (b"GET /" + b"a" * 50 + b"\n" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", 400),  # bare LF before byte 101
    (b"GET /" + b"a" * 150 + b"\n HTTP/1.1\r\n\r\n", 414),  # byte 101 before the bare LF
    (b"GET / HTTP/1.1\r\nX : a\r\nY: " + b"v" * 600 + b"\r\n\r\n", 431),  # too large before complete
    (b"GET / HTTP/1.1\r\nX : a\r\nHost: a\r\n\r\n", 400),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("index", "data", "status"), [(i, d, s) for i, (d, s) in enumerate(MULTI_FAULT)])
def test_first_fault_to_show_wins(index: int, data: bytes, status: int, mode: str) -> None:
    for pieces in feeds(data, mode, index):
        out = drive(pieces)
        assert out.error is not None and out.error.status == status, out.error
