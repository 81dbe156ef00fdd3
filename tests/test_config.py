"""Settings resolution: defaults < TOML file < EHTTPD_* environment < flags, and the validation of each value.

These drive `ehttpd.config.resolve` directly (a pure function of flags, environment and directory);
tests/test_cli.py runs the same through real `python -m ehttpd` processes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from ehttpd import interface
from ehttpd.config import INTERFACES, LIMITS, OPTIONS, ConfigError, Settings, reference, render, resolve
from ehttpd.parser import Limits

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_defaults_without_any_source(tmp_path):
    settings = resolve({}, {}, str(tmp_path))
    expected = Settings()
    expected.workers = os.cpu_count() or 1  # 0 means one per CPU, resolved at launch
    assert settings == expected


def test_each_source_overrides_the_one_below(tmp_path):
    (tmp_path / "e.toml").write_text('threads = 4\nbacklog = 100\nname = "file"\nheader_timeout = 3\n')
    env = {"EHTTPD_CONFIG": "e.toml", "EHTTPD_BACKLOG": "200", "EHTTPD_NAME": "env"}
    settings = resolve({"name": "flag"}, env, str(tmp_path))
    assert settings.threads == 4  # file over default
    assert settings.backlog == 200  # environment over file
    assert settings.name == "flag"  # flag over environment and file
    assert settings.header_timeout == 3.0  # an int in TOML for a float setting
    assert settings.keepalive_timeout == Settings().keepalive_timeout  # untouched: default
    assert settings.config == "e.toml"


def test_config_flag_beats_environment_config(tmp_path):
    (tmp_path / "a.toml").write_text("threads = 5\n")
    (tmp_path / "b.toml").write_text("threads = 6\n")
    assert resolve({"config": "b.toml"}, {"EHTTPD_CONFIG": "a.toml"}, str(tmp_path)).threads == 6


def test_pyproject_tool_table_is_picked_up(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.ehttpd]\nthreads = 7\nmax-requests = 9\n'
    )
    settings = resolve({}, {}, str(tmp_path))
    assert (settings.threads, settings.max_requests) == (7, 9)


def test_pyproject_ignored_when_a_config_is_given(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ehttpd]\nthreads = 7\n")
    (tmp_path / "other.toml").write_text("backlog = 10\n")
    settings = resolve({"config": "other.toml"}, {}, str(tmp_path))
    assert (settings.threads, settings.backlog) == (Settings().threads, 10)


def test_pyproject_without_tool_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert resolve({}, {}, str(tmp_path)).threads == Settings().threads


def test_limits_from_every_source(tmp_path):
    (tmp_path / "l.toml").write_text(
        "max_body = 1000\n[limits]\nmax_header_count = 20\nmax_chunk_line = 300\n"
    )
    env = {"EHTTPD_MAX_CHUNK_LINE": "400"}
    settings = resolve({"config": "l.toml", "max_request_line": "512"}, env, str(tmp_path))
    assert settings.limits == Limits(
        max_request_line=512, max_header_count=20, max_body=1000, max_chunk_line=400
    )


def test_environment_lists_bools_and_unset(tmp_path):
    env = {
        "EHTTPD_BIND": "127.0.0.1:9000, unix:/tmp/x.sock,[::1]:9001",
        "EHTTPD_PRELOAD": "yes",
        "EHTTPD_REUSE_PORT": "0",
        "EHTTPD_ACCESS_LOG": "-",
        "EHTTPD_UNIX_SOCKET_MODE": "660",
        "EHTTPD_LOG_LEVEL": "DEBUG",
        "EHTTPD_NOT_A_SETTING": "ignored",
    }
    settings = resolve({"access_log": ""}, env, str(tmp_path))
    assert settings.bind == ["127.0.0.1:9000", "unix:/tmp/x.sock", "[::1]:9001"]
    assert (settings.preload, settings.reuse_port) == (True, False)
    assert settings.access_log is None  # the flag's empty string unsets the environment's value
    assert settings.unix_socket_mode == 0o660
    assert settings.log_level == "debug"


def test_flag_list_replaces_lower_sources(tmp_path):
    (tmp_path / "b.toml").write_text('bind = ["127.0.0.1:1", "127.0.0.1:2"]\n')
    settings = resolve({"config": "b.toml", "bind": ["[::1]:3"]}, {}, str(tmp_path))
    assert settings.bind == ["[::1]:3"]


BIND = "must be HOST:PORT, [V6]:PORT, unix:PATH or fd://N"
WORKERS = "must be a positive integer (or 0: one per CPU)"
BAD_VALUES = [
    ("workers", "x", f"{WORKERS}, got 'x'"),
    ("workers", "-1", f"{WORKERS}, got -1"),
    ("threads", "0", "must be a positive integer up to 2,147,483,647, got 0"),
    ("threads", "2.5", "must be a positive integer up to 2,147,483,647, got '2.5'"),
    ("timeout", "soon", "must be a number of seconds > 0 up to 1,000,000,000, got 'soon'"),
    ("timeout", "inf", "must be a number of seconds > 0 up to 1,000,000,000, got 'inf'"),
    ("keepalive_grace", "0", "must be a number of seconds > 0 up to 1,000,000,000, got 0.0"),
    ("graceful_timeout", "-1", "must be a number of seconds >= 0 up to 1,000,000,000, got -1.0"),
    ("preload", "maybe", "must be true or false, got 'maybe'"),
    ("interface", "asgi", "must be one of auto, native, raw, wsgi, got 'asgi'"),
    ("log_level", "loud", "must be one of debug, info, warning, error, critical, got 'loud'"),
    ("bind", "::1", f"{BIND}, got '::1'"),
    ("bind", "127.0.0.1:99999", f"{BIND}, got '127.0.0.1:99999'"),
    ("bind", "127.0.0.1:80,unix:", f"{BIND}, got 'unix:'"),
    ("bind", "fd://x", f"{BIND}, got 'fd://x'"),
    ("bind", "", f"{BIND}, got ''"),
    ("unix_socket_mode", "999", "must be an octal file mode such as 660, got '999'"),
    ("root_path", "app/", "must be empty or a path like /app, got 'app/'"),
    ("chdir", "/no/such/dir", "must be an existing directory, got '/no/such/dir'"),
    ("max_request_line", "0", "must be a positive integer up to 2,147,483,647, got 0"),
    # Past what the kernel or a struct timeval holds: these passed, then the launch failed with a traceback.
    ("backlog", "99999999999", "must be a positive integer up to 2,147,483,647, got 99999999999"),
    ("keepalive_grace", "1e300", "must be a number of seconds > 0 up to 1,000,000,000, got 1e+300"),
    ("send_timeout", "1e300", "must be a number of seconds > 0 up to 1,000,000,000, got 1e+300"),
]


@pytest.mark.parametrize(("name", "raw", "message"), BAD_VALUES)
def test_bad_value_names_its_source(tmp_path, name, raw, message):
    option = OPTIONS[name]
    for flags, env, source in (({name: raw}, {}, option.flags[0]), ({}, {option.env: raw}, option.env)):
        with pytest.raises(ConfigError) as error:
            resolve(flags, env, str(tmp_path))
        assert str(error.value) == f"{source} {message}"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("workers = -2", "workers in c.toml must be a positive integer (or 0: one per CPU), got -2"),
        ("workers = 2.0", "workers in c.toml must be a positive integer (or 0: one per CPU), got 2.0"),
        ("workers = true", "workers in c.toml must be a positive integer (or 0: one per CPU), got True"),
        ('preload = "perhaps"', "preload in c.toml must be true or false, got 'perhaps'"),
        ("bind = [1]", "bind in c.toml must be HOST:PORT, [V6]:PORT, unix:PATH or fd://N, got [1]"),
        ("server_header = 5", "server_header in c.toml must be a string, got 5"),
        ("wrokers = 2", "unknown setting 'wrokers' in c.toml (did you mean 'workers'?)"),
        ("[limits]\nthreads = 2", "unknown setting 'threads' in c.toml"),
        ('config = "other.toml"', "unknown setting 'config' in c.toml"),
        ("workers = ", "c.toml is not valid TOML: Invalid value (at line 1, column 11)"),
    ],
)
def test_bad_toml(tmp_path, toml, message):
    (tmp_path / "c.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as error:
        resolve({"config": "c.toml"}, {}, str(tmp_path))
    assert str(error.value) == message


def test_bad_pyproject_value_names_the_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ehttpd]\nthreads = 0\n")
    with pytest.raises(ConfigError, match=r"^threads in pyproject.toml \[tool.ehttpd\] must be a positive"):
        resolve({}, {}, str(tmp_path))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as error:
        resolve({"config": "nope.toml"}, {}, str(tmp_path))
    assert str(error.value) == "cannot read config file 'nope.toml': No such file or directory"


def test_rendered_settings_read_back_the_same(tmp_path):
    flags = {
        "bind": ["[::1]:8001", "unix:/tmp/s"],
        "unix_socket_mode": "640",
        "access_log": "-",
        "preload": True,
    }
    flags |= {"root_path": "/x", "max_body": "77", "access_log_format": 'say "%(h)s" \\ ok', "workers": "3"}
    settings = resolve(flags, {}, str(tmp_path))
    (tmp_path / "round.toml").write_text(render(settings))
    assert resolve({"config": "round.toml"}, {}, str(tmp_path)) == dataclasses.replace(
        settings, config="round.toml"
    )


def test_every_setting_is_in_the_table():
    names = {f.name for f in dataclasses.fields(Settings)} - {"limits"} | {
        f.name for f in dataclasses.fields(Limits)
    }
    assert set(OPTIONS) == names  # no Limits field shadows a Settings field
    assert set(LIMITS) == {f.name for f in dataclasses.fields(Limits)}
    for option in OPTIONS.values():
        assert option.help and option.flags, option.name


def test_docs_reference_matches_the_table():
    text = DOCS.read_text()
    assert reference() in text, (
        "regenerate: python -c 'from ehttpd.config import write_reference; write_reference()'"
    )
    for option in OPTIONS.values():
        assert f"| `{option.name}` |" in text and f"`{option.env}`" in text
        for flag in option.flags:
            assert f"`{flag}`" in text or f"`{flag.upper()}` (positional)" in text


def test_interfaces_agree_with_the_interface_module():
    assert INTERFACES == interface.INTERFACES


def test_explicit_pyproject_config_reads_its_tool_table(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("threads = 99\n[tool.ehttpd]\nthreads = 8\n")
    assert resolve({"config": "sub/pyproject.toml"}, {}, str(tmp_path)).threads == 8
