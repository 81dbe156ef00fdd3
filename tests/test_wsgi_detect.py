"""How `ehttpd module:app` recognises a WSGI application, and the launcher's forms and failures.

detect_interface is a pure function of the application object, so it is checked directly on the real
objects (a Flask app, Django's WSGIHandler, functions, classes); the launcher is run as a real process.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
from wsgiref.validate import validator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from flask import Flask

from ehttpd import raw
from ehttpd.interface import detect_interface

from .helpers import APPS, ROOT, ServerProcess, free_port
from .httpraw import get


def wsgi_function(environ, start_response):
    return []


def native_handler(request):
    return None


class WSGIClass:
    """PEP 3333 allows a class as the application: calling it makes the response iterable."""

    def __init__(self, environ, start_response):
        self.environ = environ

    def __iter__(self):
        return iter(())


class WSGICallable:
    def __call__(self, environ, start_response, extra=None):
        return []


class NativeCallable:
    def __call__(self, request):
        return None


@pytest.mark.parametrize(
    ("app", "kind"),
    [
        (Flask("detect"), "wsgi"),
        (WSGIHandler.__new__(WSGIHandler), "wsgi"),  # Django's application object, unconfigured
        (wsgi_function, "wsgi"),
        (WSGIClass, "wsgi"),
        (WSGICallable(), "wsgi"),
        (functools.partial(lambda config, environ, start_response: [], {}), "wsgi"),
        (native_handler, "native"),
        (NativeCallable(), "native"),
        (raw(lambda stream: False), "raw"),
    ],
)
def test_detect_interface(app, kind):
    assert detect_interface(app) == kind


def test_ambiguous_signature_is_native_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ehttpd.error"):
        assert detect_interface(validator(wsgi_function)) == "native"
    assert "--interface wsgi" in caplog.text


# -- the launcher ---------------------------------------------------------------------------------------
def launch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ehttpd", *args, "--bind", f"127.0.0.1:{free_port()}"],
        cwd=APPS,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("spec", "mentions"),
    [
        ("no_such_module_here:app", "no_such_module_here"),
        ("wsgi_import_error:app", "fails to import on purpose"),
        ("wsgi_app:no_such_attribute", "no_such_attribute"),
        ("flask_app:no_such_factory()", "no_such_factory"),
    ],
)
def test_launcher_fails_with_one_line_and_exit_2(spec, mentions):
    result = launch(spec)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and mentions in lines[0], result.stderr


@pytest.mark.parametrize("spec", ["flask_app:create_app()", "flask_app:create_app('named')"])
def test_factory_form_serves_the_app_it_returns(spec):
    with ServerProcess(spec, "--workers", "1", "--threads", "2") as srv:
        assert json.loads(get(srv.port, "/user/x/1").body)["name"] == "x"


def test_interface_flag_forces_the_driver():
    """Forced native, a WSGI app gets a Request and fails (500); forced wsgi, a *args app is served."""
    with ServerProcess("wsgi_app:app", "--interface", "native", "--workers", "1", "--threads", "2") as srv:
        assert get(srv.port, "/environ").status == 500
    with ServerProcess("wsgi_app:validated", "--interface", "wsgi", "--workers", "1") as srv:
        assert json.loads(get(srv.port, "/environ").body)["PATH_INFO"] == "/environ"
