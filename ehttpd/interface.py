"""Which kind of application this is (native handler, raw handler or WSGI), and its protocol driver."""

from __future__ import annotations

import inspect

from .config import Settings
from .protocol import HTTPProtocol, ServerState

INTERFACES = ("auto", "native", "raw", "wsgi")


def detect_interface(app: object) -> str:
    """`raw` if marked with @ehttpd.raw; `wsgi` for a callable of (environ, start_response); else `native`."""
    marked = getattr(app, "__ehttpd_interface__", None)
    if marked:
        return marked
    try:
        params = [
            p
            for p in inspect.signature(app).parameters.values()  # type: ignore[arg-type]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return "native"
    return "wsgi" if len(params) >= 2 else "native"


def make_protocol(app: object, settings: Settings, state: ServerState):
    """The connection driver for `app` under `settings.interface`."""
    kind = settings.interface if settings.interface != "auto" else detect_interface(app)
    if kind == "native":
        return HTTPProtocol(app, settings, state)  # type: ignore[arg-type]
    if kind == "raw":
        from .raw import RawProtocol

        return RawProtocol(app, settings, state)  # type: ignore[arg-type]
    if kind == "wsgi":
        from .wsgi import WSGIProtocol

        return WSGIProtocol(app, settings, state)
    raise ValueError(f"unknown interface {kind!r}; choose one of {', '.join(INTERFACES)}")
