"""Import the application named `module:attribute` (or `module:factory()`), as gunicorn does."""

from __future__ import annotations

import ast
import importlib
import os
import sys


class AppLoadError(Exception):
    """The application could not be imported or found; the message is one line for the user."""


def load_app(spec: str, chdir: str | None = None) -> object:
    """Import `spec`; `module` alone means `module:app`; `module:make()` calls a factory with literal args."""
    directory = os.path.abspath(chdir or os.getcwd())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if not module_name:
        raise AppLoadError(f"no module in {spec!r}: use module:app")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    name, args, kwargs = _parse_factory(attr, spec)
    try:
        app = getattr(module, name)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {name!r}") from None
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except Exception as exc:
            raise AppLoadError(f"factory {name}() failed: {type(exc).__name__}: {exc}") from exc
    if not callable(app):
        raise AppLoadError(f"{spec!r} is not callable")
    return app


def _parse_factory(attr: str, spec: str) -> tuple[str, list | None, dict]:
    """`name` → (name, None, {}); `name(1, x="y")` → (name, [1], {"x": "y"}), literals only."""
    if "(" not in attr:
        if not attr.isidentifier():
            raise AppLoadError(f"bad attribute {attr!r} in {spec!r}")
        return attr, None, {}
    try:
        call = ast.parse(attr, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError):
        raise AppLoadError(f"bad factory call {attr!r} in {spec!r}: only literal arguments") from None
    return call.func.id, args, kwargs
