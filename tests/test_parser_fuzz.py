"""Property tests: whatever bytes arrive, the parser and the chunked decoder answer only with HTTPError.

Arbitrary bytes, and valid requests from tests/corpus.py with a few bytes inserted, deleted, replaced or
duplicated, are driven through the same server loop as tests/test_parser.py, whole and in random pieces.
An exception other than HTTPError (IndexError, UnicodeDecodeError, ValueError from int(), ...) fails, and
so does any difference in outcome between feeding the bytes whole and feeding them in pieces.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehttpd.chunked import ChunkedDecoder
from ehttpd.errors import HTTPError
from ehttpd.parser import DEFAULT_LIMITS, find_head, parse_head
from tests.corpus import LIMITS, VALID
from tests.test_parser import Outcome, drive

# FUZZ_SCALE=50 runs fifty times as many examples, for a longer hunt than the test suite's ~10 s.
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=int(600 * SCALE), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

SEEDS = [data for _, data, _ in VALID]
# Octets that matter to the grammar, so that mutations hit delimiters more often than chance would.
SPECIAL = b'\r\n\x00 \t:;,="\\/*?#%@[]()0159aAfFgx+-.\x7f\x80\xa0\xff'


def summary(out: Outcome) -> tuple:
    """What must not depend on how the bytes were split: every parsed request, or the error status."""
    requests = [
        (h.method, h.target, h.version, h.headers, h.content_length, h.chunked, h.keep_alive, body, trailers)
        for h, body, trailers in out.requests
    ]
    return requests, out.error.status if out.error else None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        octet = draw(st.sampled_from(SPECIAL) | st.integers(0, 255))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if kind == "insert" or not data:
            data[pos:pos] = bytes([octet])
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "replace":
            data[min(pos, len(data) - 1)] = octet
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


def check(data: bytes, cuts: list[int]) -> None:
    at_once = drive([data])
    in_pieces = drive(split(data, cuts))
    assert summary(at_once) == summary(in_pieces)


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=20))
def test_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    check(data, cuts)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_a_request_line(data: bytes) -> None:
    for prefix in (b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n"):
        check(prefix + data, [len(prefix) + 1, len(prefix) + len(data) // 2])


@settings(FUZZ, max_examples=int(1500 * SCALE))
@given(mutated(), st.lists(st.integers(0, 2000), max_size=12))
def test_mutated_valid_requests(data: bytes, cuts: list[int]) -> None:
    check(data, cuts)


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=20))
def test_chunked_decoder_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    outcomes = []
    for pieces in ([data], split(data, cuts)):
        decoder = ChunkedDecoder(LIMITS)
        buf = bytearray()
        body = bytearray()
        status = None
        try:
            for piece in pieces:
                buf += piece
                while not decoder.done and (part := decoder.decode(buf, max_bytes=7)) is not None:
                    body += part
        except HTTPError as exc:
            status = exc.status
        outcomes.append((status, decoder.done, bytes(body) if status is None else None, decoder.trailers))
    assert outcomes[0] == outcomes[1]


@FUZZ
@given(st.binary(min_size=4, max_size=400))
def test_parse_head_on_any_terminated_bytes(data: bytes) -> None:
    """parse_head on any buffer ending in CRLFCRLF, even one find_head would have refused earlier."""
    buf = data + b"\r\n\r\n"
    for limits in (LIMITS, DEFAULT_LIMITS):
        try:
            find_head(buf, limits)
        except HTTPError:
            pass
        try:
            head = parse_head(buf, len(buf), limits)
        except HTTPError:
            continue
        assert head.version in ("HTTP/1.0", "HTTP/1.1")
        assert head.method and head.target
