"""Byte ranges (RFC 9110 §14): `Range` and `If-Range` on a 200 response whose body is bytes or a file.

`with_ranges(request, response)` turns a full response into a `206` with one range, a `206` of
`multipart/byteranges` with several, or a `416`; a file stays a file, so every part goes out with
os.sendfile. Invalid `Range` syntax is ignored (the full 200), as RFC 9110 §14.2 requires.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime

from .request import Request
from .response import FileBody, Response

MAX_RANGES = 100  # more ranges than this in one request are ignored (RFC 9110 §14.2 allows it)
_RANGE_SPEC_RE = re.compile(r"([0-9]*)-([0-9]*)")
_HUGE = 1 << 62  # stands for a position with more digits than any representation has bytes
_OWS = " \t"

Ranges = list[tuple[int, int]]  # (start, stop) pairs, stop exclusive


def parse_range(value: str, length: int) -> Ranges | None:
    """The satisfiable ranges of a `Range` value for a representation of `length` bytes.

    None when the value is invalid or not in bytes (the caller ignores it); [] when it is valid but no
    range is satisfiable (416). A suffix `-N` is the last N bytes, all of them when N exceeds the length.
    Overlapping ranges are merged when they would add up to more than the whole representation.
    """
    unit, eq, range_set = value.partition("=")
    if not eq or unit.lower() != "bytes":
        return None
    specs = [s.strip(_OWS) for s in range_set.split(",")]
    specs = [s for s in specs if s]  # RFC 9110 §5.6.1.2: empty list elements are ignored
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: Ranges = []
    for spec in specs:
        match = _RANGE_SPEC_RE.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if not first:
            if not last:
                return None
            suffix = _int(last)
            if suffix > 0 and length > 0:
                ranges.append((max(0, length - suffix), length))
            continue
        start = _int(first)
        if last and _int(last) < start:
            return None  # an invalid int-range makes the whole header invalid
        if start < length:
            ranges.append((start, min(_int(last) + 1, length) if last else length))
    if sum(stop - start for start, stop in ranges) > length:
        ranges = _merge(ranges)
    return ranges


def _int(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def _merge(ranges: Ranges) -> Ranges:
    """Ranges sorted, with overlapping or adjacent ones joined."""
    merged: Ranges = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def add_validators(response: Response) -> None:
    """Give a file response an ETag and a Last-Modified from the file's status, unless it has them."""
    body = response.body
    if not isinstance(body, FileBody):
        return
    st = os.fstat(body.file.fileno())
    tag = f"{st.st_mtime_ns:x}-{body.length:x}" + (f"-{body.offset:x}" if body.offset else "")
    response.headers.setdefault("ETag", f'"{tag}"')
    response.headers.setdefault("Last-Modified", formatdate(st.st_mtime, usegmt=True))


def if_range_matches(value: str, response: Response) -> bool:
    """RFC 9110 §13.1.5: a strong ETag equal to the response's, or exactly its (strong) Last-Modified."""
    value = value.strip(_OWS)
    if value.startswith(('"', "W/")):
        etag = response.headers.get("ETag")
        return etag is not None and not value.startswith("W/") and etag == value
    last_modified = response.headers.get("Last-Modified")
    if last_modified is None:
        return False
    asked, modified = _http_date(value), _http_date(last_modified)
    # A modification time is a strong validator only once a second has passed since it (§8.8.2.2).
    return asked is not None and asked == modified and modified <= time.time() - 1


def _http_date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def with_ranges(request: Request, response: Response) -> Response:
    """Answer the request's `Range` from a 200 response with a bytes or file body.

    Adds `Accept-Ranges: bytes` (and validators to a file); on anything but GET, another status or another
    kind of body the response is returned as it is.
    """
    body = response.body
    if request.method not in ("GET", "HEAD") or response.status != 200:
        return response
    if not isinstance(body, (bytes, bytearray, FileBody)):
        return response
    response.headers.set("Accept-Ranges", "bytes")
    add_validators(response)
    values = request.headers.get_all("range")
    if request.method != "GET" or len(values) != 1 or "Content-Range" in response.headers:
        return response
    if_range = request.headers.get("if-range")
    if if_range is not None and not if_range_matches(if_range, response):
        return response
    length = body.length if isinstance(body, FileBody) else len(body)
    ranges = parse_range(values[0], length)
    if ranges is None or length == 0:
        return response
    if not ranges:
        if isinstance(body, FileBody):
            body.close()
        refused = Response.range_not_satisfiable(length)
        refused.headers.set("Accept-Ranges", "bytes")
        return refused
    if len(ranges) == 1:
        return _single(response, ranges[0], length)
    return _multipart(response, ranges, length)


def _single(response: Response, rng: tuple[int, int], length: int) -> Response:
    start, stop = rng
    body = response.body
    if isinstance(body, FileBody):
        part: bytes | FileBody = FileBody(body.file, body.offset + start, stop - start, body.owned)
    else:
        part = bytes(body[start:stop])
    partial = Response(206, part, response.headers)
    partial.headers.set("Content-Range", f"bytes {start}-{stop - 1}/{length}")
    return partial


def _multipart(response: Response, ranges: Ranges, length: int) -> Response:
    """RFC 9110 §14.6: each part with its own Content-Type and Content-Range, between boundaries."""
    boundary = secrets.token_hex(16)
    content_type = response.headers.get("Content-Type")
    type_line = f"Content-Type: {content_type}\r\n" if content_type else ""
    heads = [
        (
            ("\r\n" if i else "")
            + f"--{boundary}\r\n{type_line}Content-Range: bytes {start}-{stop - 1}/{length}\r\n\r\n"
        ).encode("latin-1")
        for i, (start, stop) in enumerate(ranges)
    ]
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    body = response.body
    if isinstance(body, FileBody):
        parts: bytes | MultipartFileBody = MultipartFileBody(body, heads, ranges, tail)
    else:
        view = memoryview(body)
        parts = b"".join(
            x for (start, stop), head in zip(ranges, heads, strict=True) for x in (head, view[start:stop])
        )
        parts += tail
    multi = Response(206, parts, response.headers)
    multi.headers.set("Content-Type", f"multipart/byteranges; boundary={boundary}")
    total = sum(len(h) for h in heads) + sum(stop - start for start, stop in ranges) + len(tail)
    multi.headers.set("Content-Length", str(total))  # lets the writer frame an iterable body
    return multi


class MultipartFileBody:
    """The parts of a multipart/byteranges file response: part heads as bytes, data as FileBody items.

    The writer sends each FileBody with os.sendfile; the file is closed by `close()`, which the writer
    calls after sending (or instead of sending, for HEAD or an error).
    """

    __slots__ = ("file_body", "heads", "ranges", "tail")

    def __init__(self, file_body: FileBody, heads: list[bytes], ranges: Ranges, tail: bytes) -> None:
        self.file_body = file_body
        self.heads = heads
        self.ranges = ranges
        self.tail = tail

    def __iter__(self) -> Iterator[bytes | FileBody]:
        fb = self.file_body
        for head, (start, stop) in zip(self.heads, self.ranges, strict=True):
            yield head
            yield FileBody(fb.file, fb.offset + start, stop - start, owned=False)
        yield self.tail

    def close(self) -> None:
        self.file_body.close()
