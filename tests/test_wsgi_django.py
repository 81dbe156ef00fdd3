"""End-to-end: a real Django project (tests/apps/djangoapp) served by ehttpd over real sockets.

A view, a form POST protected by CSRF (refused without the token, accepted with it), a static file served
through wsgi.file_wrapper, and the admin login page. The database is sqlite in a temporary directory and
is migrated first, as a deployment would.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from .helpers import APPS, ROOT, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("django")
    env = {"EHTTPD_TEST_DJANGO_DIR": str(data), "DJANGO_SETTINGS_MODULE": "djangoapp.settings"}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=APPS,
        env={"PYTHONPATH": f"{APPS}:{ROOT}", "PATH": "/usr/bin:/bin", **env},
        check=True,
        timeout=120,
    )
    srv = ServerProcess("djangoapp.wsgi:application", "--workers", "1", "--threads", "4", env=env)
    with srv:
        yield srv


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_views(url):
    with requests.Session() as s:
        resp = s.get(url + "/")
        assert (resp.status_code, resp.text) == (200, "hello from django")
        assert resp.headers["Content-Length"] == str(len("hello from django"))
        data = s.get(url + "/hello/caf%C3%A9/?a=1").json()
        assert data == {"name": "café", "path": "/hello/café/", "query": {"a": "1"}}
        assert s.get(url + "/missing/").status_code == 404
        redirect = s.get(url + "/form", allow_redirects=False)  # CommonMiddleware's APPEND_SLASH
        assert (redirect.status_code, redirect.headers["Location"]) == (301, "/form/")


def test_form_post_with_csrf(url):
    with requests.Session() as s:
        page = s.get(url + "/form/")
        assert page.status_code == 200 and "csrftoken" in s.cookies
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        refused = s.post(url + "/form/", data={"name": "ada", "count": "3"})
        assert refused.status_code == 403  # no token in the form: CSRF is really checked
        resp = s.post(
            url + "/form/",
            data={"csrfmiddlewaretoken": token, "name": "ada", "count": "3"},
            headers={"Referer": url + "/form/"},
        )
        assert resp.status_code == 200 and resp.json() == {"ok": True, "name": "ada", "count": 3}
        bad = s.post(url + "/form/", data={"csrfmiddlewaretoken": token, "name": "ada", "count": "0"})
        assert bad.status_code == 400 and "count" in bad.json()["errors"]


def test_static_file(url):
    expected = (APPS / "djangoapp" / "static" / "site.css").read_bytes()
    resp = requests.get(url + "/static/site.css", timeout=10)
    assert resp.status_code == 200 and resp.content == expected
    assert resp.headers["Content-Length"] == str(len(expected))
    assert resp.headers["Content-Type"].startswith("text/css")


def test_admin_login_page_renders(url):
    resp = requests.get(url + "/admin/", timeout=10, allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/login/?next=/admin/"
    login = requests.get(url + "/admin/login/?next=/admin/", timeout=10)
    assert login.status_code == 200
    assert 'name="username"' in login.text and 'name="password"' in login.text
    assert "Django administration" in login.text
