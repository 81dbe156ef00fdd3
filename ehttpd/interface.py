"""Which kind of application this is (native handler, raw handler or WSGI), and its protocol driver."""

from __future__ import annotations

import inspect
import logging

from .config import Settings
from .protocol import HTTPProtocol, ServerState

INTERFACES = ("auto", "native", "raw", "wsgi")

log = logging.getLogger("ehttpd.error")


def detect_interface(app: object) -> str:
    """`raw` if marked with @ehttpd.raw; `wsgi` for a callable of (environ, start_response); else `native`.

    Flask and Django apps, plain functions, classes and instances with __call__ are told apart by their
    signature. A callable that takes *args (wsgiref's validator, an undecorated wrapper) or has none that
    can be read is assumed native, with a warning naming --interface.
    """
    marked = getattr(app, "__ehttpd_interface__", None)
    if marked:
        return marked
    try:
        parameters = inspect.signature(app).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        log.warning("cannot read the signature of %r; serving it as a native handler (see --interface)", app)
        return "native"
    required = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(required) >= 2:
        return "wsgi"
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        log.warning("%r takes *args: serving it as a native handler; use --interface wsgi for WSGI", app)
    return "native"


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
