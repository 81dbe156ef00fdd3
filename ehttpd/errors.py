"""Protocol errors: each carries the status it answers with, so no isinstance chain maps them."""

from __future__ import annotations

from http import HTTPStatus

REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}


class HTTPError(Exception):
    """A request the server refuses; `status` is the answer, `reason` a short text for the body and log."""

    status = 400

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class BadRequest(HTTPError):
    status = 400


class RequestTimeout(HTTPError):
    status = 408


class ContentTooLarge(HTTPError):
    status = 413


class URITooLong(HTTPError):
    status = 414


class ExpectationFailed(HTTPError):
    status = 417


class HeaderFieldsTooLarge(HTTPError):
    status = 431


class UnsupportedFeature(HTTPError):
    status = 501


class VersionNotSupported(HTTPError):
    status = 505


class ClientDisconnected(ConnectionError):
    """The peer closed or reset the connection while we were reading its request or body."""
