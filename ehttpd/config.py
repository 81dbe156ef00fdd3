"""Settings: every option, its type, default, flags and meaning in one table, and how they are resolved.

Each `Settings` field carries its help text, extra flags and validator as field metadata; the command-line
flags, the `EHTTPD_*` environment names, the TOML keys, the validation and docs/settings.md all derive
from it. Precedence, lowest first: defaults < TOML file < EHTTPD_* environment variables < flags.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import socket
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

from .forwarded import allow_list
from .parser import Limits
from .sockets import parse_bind

ENV_PREFIX = "EHTTPD_"
INTERFACES = ("auto", "native", "raw", "wsgi")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CERT_REQS = ("none", "optional", "required")
TLS_VERSIONS = ("1.2", "1.3")


class ConfigError(Exception):
    """A setting is invalid; the message is one line for the user."""


class Check(NamedTuple):
    ok: Callable[[Any], bool]  # may also raise ValueError for a bad value
    what: str  # what a valid value looks like, for the error message


def one_of(*choices: str) -> Check:
    return Check(lambda v: v in choices, "one of " + ", ".join(choices))


def _bind_ok(spec: str) -> bool:
    family, address = parse_bind(spec)
    return bool(address) if family == socket.AF_UNIX else family != 0 or address >= 0  # type: ignore[operator]


def _octal(raw: Any) -> int:
    return raw if type(raw) is int else int(raw.strip(), 8)


def _lower(raw: Any) -> str:
    return raw.strip().lower()


def _cert_reqs(raw: Any) -> str:
    word = str(raw).strip().lower()
    return {"0": "none", "1": "optional", "2": "required"}.get(word, word)  # gunicorn's numbers too


def _tls_version(raw: Any) -> str:
    if isinstance(raw, bool):
        raise TypeError(raw)
    return str(raw).strip().lower().removeprefix("tlsv").replace("_", ".")  # 1.3, "1.3", "TLSv1_3"


# Upper bounds too: a value the kernel or a struct cannot hold (a backlog past a C int, a timeout past a
# struct timeval) failed deep in the launch with a traceback.
INT_MAX = 2**31 - 1
MAX_SECONDS = 10**9  # about 31 years
POSITIVE = Check(lambda v: 0 < v <= INT_MAX, f"a positive integer up to {INT_MAX:,}")
COUNT = Check(lambda v: 0 <= v <= INT_MAX, f"an integer >= 0 up to {INT_MAX:,}")
WORKERS = Check(lambda v: 0 <= v <= INT_MAX, "a positive integer (or 0: one per CPU)")
SECONDS = Check(lambda v: 0 <= v <= MAX_SECONDS, f"a number of seconds >= 0 up to {MAX_SECONDS:,}")
POS_SECONDS = Check(lambda v: 0 < v <= MAX_SECONDS, f"a number of seconds > 0 up to {MAX_SECONDS:,}")
BIND = Check(_bind_ok, "HOST:PORT, [V6]:PORT, unix:PATH or fd://N")
DIRECTORY = Check(os.path.isdir, "an existing directory")
MODE = Check(lambda v: 0 <= v <= 0o777, "an octal file mode such as 660")
ROOT_PATH = Check(lambda v: v == "" or (v[0] == "/" and v[-1] != "/"), "empty or a path like /app")
IPS = Check(lambda v: True, "addresses or networks (10.0.0.0/8) with commas between, * for all, or empty")


def opt(default: Any, help: str, *aliases: str, check: Check | None = None, **meta: Any) -> Any:
    """A Settings field with its documentation: `aliases` are flags besides --field-name.

    Without `check`, integers must be >= 0 and floats (all durations) too."""
    meta.update(help=help, aliases=aliases, check=check)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(slots=True)
class Settings:
    """The effective settings of a server; the launcher resolves flags, files and environment into one."""

    app: str = opt("", "module:app, module:factory() or module (= module:app)", positional=True, group="app")
    chdir: str | None = opt(
        None, "directory to import the app from (default: the current one)", check=DIRECTORY
    )
    interface: str = opt("auto", "auto, native, raw or wsgi", check=one_of(*INTERFACES), parse=_lower)
    root_path: str = opt("", "WSGI SCRIPT_NAME, the path the app is mounted at", check=ROOT_PATH)
    name: str = opt("", "the [name] in process titles (default: the app spec)", "-n")
    config: str | None = opt(None, "TOML settings file (default: [tool.ehttpd] of ./pyproject.toml)", "-c")

    bind: list[str] = opt(  # noqa: RUF009 - opt() gives a list default a default_factory
        ["127.0.0.1:8000"],
        "HOST:PORT, [V6]:PORT, unix:PATH or fd://N; repeatable",
        "-b",
        check=BIND,
        group="where",
    )
    backlog: int = opt(2048, "listen queue length of each socket", check=POSITIVE)
    reuse_port: bool = opt(False, "one SO_REUSEPORT socket per worker slot, all held by the master")
    unix_socket_mode: int | None = opt(None, "chmod of unix: sockets, e.g. 660", check=MODE, parse=_octal)

    workers: int = opt(0, "worker processes; 0 = one per CPU", "-w", check=WORKERS, group="processes")
    threads: int = opt(4, "pool threads per worker process", check=POSITIVE)
    preload: bool = opt(False, "import the app in the master before forking (HUP cannot reload code then)")
    timeout: float = opt(30.0, "heartbeat: a worker silent this long is replaced", "-t", check=POS_SECONDS)
    request_timeout: float = opt(0.0, "a request running longer recycles its worker; 0 = off")
    graceful_timeout: float = opt(30.0, "seconds in-flight requests get on TERM, HUP or recycling")
    max_requests: int = opt(0, "recycle a worker after this many requests; 0 = never")
    max_requests_jitter: int = opt(0, "random extra requests per worker, so workers recycle apart")
    max_worker_memory: int = opt(0, "MB of RSS; a worker above it for several samples is recycled; 0 = off")
    pidfile: str | None = opt(None, "file the master writes its pid to", "-p", "--pid")
    control_socket: str | None = opt(
        None, "the master's status socket (ehttpd status); unset = PIDFILE.sock, none without a pid file"
    )
    metrics_bind: str | None = opt(
        None, "HOST:PORT where the master serves Prometheus /metrics; unset = off", check=BIND
    )

    max_connections: int = opt(
        1000, "connections open per worker; beyond, accepting pauses", check=POSITIVE, group="connections"
    )
    header_timeout: float = opt(
        10.0, "seconds to receive a request head once started (408)", check=POS_SECONDS
    )
    keepalive_timeout: float = opt(5.0, "seconds an idle keep-alive connection is kept", "--keep-alive")
    body_timeout: float = opt(30.0, "seconds without progress reading a body (408)", check=POS_SECONDS)
    send_timeout: float = opt(30.0, "seconds without progress sending a response", check=POS_SECONDS)
    keepalive_grace: float = opt(
        0.05,
        "seconds to wait for a new connection's first request, or one on its way when stopping",
        check=POS_SECONDS,
    )
    max_drain: int = opt(65536, "unread body bytes drained to keep a connection; beyond, close")
    linger: float = opt(1.0, "seconds to drain a client's bytes after an error before closing")
    server_header: str = opt("ehttpd", "value of the Server response header")
    limits: Limits = field(default_factory=Limits)  # its fields are options too: see LIMITS below

    log_level: str = opt(
        "info", ", ".join(LOG_LEVELS), check=one_of(*LOG_LEVELS), parse=_lower, group="logging"
    )
    error_log: str = opt("-", "error log file, - for stderr", "--error-logfile", "--log-file")
    access_log: str | None = opt(None, "access log file, - for stdout; unset = off", "--access-logfile")
    access_log_format: str = opt("combined", "combined, json or a format with %(atom)s", "--access-logformat")

    certfile: str | None = opt(None, "TLS certificate chain (PEM): HTTPS on every listener", group="tls")
    keyfile: str | None = opt(None, "private key of the certificate (PEM); unset: it is in certfile")
    ca_certs: str | None = opt(None, "CA certificates (PEM) to verify client certificates with")
    cert_reqs: str = opt(
        "none",
        "client certificates: none, optional (verified when sent) or required",
        check=one_of(*CERT_REQS),
        parse=_cert_reqs,
    )
    ssl_min_version: str = opt(
        "1.2", "lowest TLS version accepted: 1.2 or 1.3", check=one_of(*TLS_VERSIONS), parse=_tls_version
    )

    forwarded_allow_ips: str = opt(
        "127.0.0.1,::1",
        "peers trusted to set X-Forwarded-For/-Proto/-Host and Forwarded (addresses, networks, *)",
        check=IPS,
        parse=allow_list,
        group="proxies",
    )
    proxy_protocol: bool = opt(False, "connections from proxy_allow_ips start with a PROXY v1/v2 header")
    proxy_allow_ips: str = opt(
        "127.0.0.1,::1",
        "peers allowed to send a PROXY protocol header (addresses, networks, *)",
        "--proxy-allow-from",
        check=IPS,
        parse=allow_list,
    )


# parser.Limits holds the defaults; this says what each limit means and which gunicorn flag it answers to.
# gunicorn's --limit-request-field_size bounds one field line; max_header_bytes bounds all of them together.
LIMITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "max_request_line": ("bytes of the request line (414)", ("--limit-request-line",)),
    "max_header_count": ("header field lines (431)", ("--limit-request-fields",)),
    "max_header_bytes": (
        "bytes of all header field lines together (431)",
        ("--limit-request-field-size", "--limit-request-field_size"),
    ),
    "max_body": ("bytes of a decoded request body (413)", ()),
    "max_chunk_line": ("bytes of one chunk-size line with its extensions (400)", ()),
    "max_trailer_bytes": ("bytes of a chunked body's trailer section (431)", ()),
}


@dataclass(frozen=True, slots=True)
class Option:
    """One setting as the launcher sees it: derived from a Settings (or Limits) field."""

    name: str  # the field, the TOML key, and (upper-cased, prefixed) the environment name
    kind: type  # int, float, bool, str or list
    optional: bool  # may be unset (None); an empty string unsets it
    default: Any
    help: str
    flags: tuple[str, ...]  # the first is the canonical one; "app" is positional
    check: Check | None
    parse: Callable[[Any], Any] | None
    group: str
    limit: bool  # a field of Settings.limits

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _kind(hint: Any) -> tuple[type, bool]:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is list:
        return list, False
    return (args[0], True) if args else (hint, False)


def _options() -> dict[str, Option]:
    options: dict[str, Option] = {}
    group = ""
    hints = typing.get_type_hints(Settings)
    for f in fields(Settings):
        meta = f.metadata
        group = meta.get("group", group)
        if f.name == "limits":
            for lf in fields(Limits):
                help, aliases = LIMITS.get(lf.name, ("", ()))
                flags = (_flag(lf.name), *aliases)
                options[lf.name] = Option(
                    lf.name, int, False, lf.default, help, flags, POSITIVE, None, "limits", True
                )
            continue
        kind, optional = _kind(hints[f.name])
        check = meta["check"] or {int: COUNT, float: SECONDS}.get(kind)
        default = f.default_factory() if callable(f.default_factory) else f.default
        flags = (f.name,) if meta.get("positional") else (_flag(f.name), *meta["aliases"])
        parse = meta.get("parse")
        options[f.name] = Option(
            f.name, kind, optional, default, meta["help"], flags, check, parse, group, False
        )
    return options


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


OPTIONS = _options()
_WHAT = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list of strings",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


# -- converting and validating one value --------------------------------------------------------------------
def convert(option: Option, raw: Any, source: str) -> Any:
    """`raw` (a string from a flag or the environment, or a TOML value) → a valid value, or ConfigError."""
    what = option.check.what if option.check else _WHAT[option.kind]
    try:
        value = _parse(option, raw)
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"{source} must be {what}, got {raw!r}") from None
    if value is not None and option.check is not None:
        for item in value if option.kind is list else (value,):
            if not _passes(option.check, item):
                raise ConfigError(f"{source} must be {what}, got {item!r}")
    return value


def _passes(check: Check, value: Any) -> bool:
    try:
        return bool(check.ok(value))
    except (ValueError, TypeError):
        return False


def _parse(option: Option, raw: Any) -> Any:
    if option.optional and (raw is None or raw == ""):
        return None
    if option.parse is not None:
        return option.parse(raw)
    kind = option.kind
    if kind is list:
        items = [s.strip() for s in raw.split(",")] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(s, str) and s for s in items):
            raise ValueError(raw)
        return list(items)
    if kind is bool:
        word = raw if isinstance(raw, bool) else raw.strip().lower()
        if word in _TRUE or word is True:
            return True
        if word in _FALSE or word is False:
            return False
        raise ValueError(raw)
    if isinstance(raw, bool) or (kind is not float and isinstance(raw, float)):
        raise TypeError(raw)
    if kind is int:
        return raw if isinstance(raw, int) else int(raw.strip())
    if kind is float:
        value = float(raw if isinstance(raw, int | float) else raw.strip())
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


# -- the sources ------------------------------------------------------------------------------------------
def resolve(
    flags: Mapping[str, Any], environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> Settings:
    """Settings from defaults < TOML file < EHTTPD_* environment < `flags` (option name → raw value given)."""
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    config = flags.get("config") or environ.get(OPTIONS["config"].env) or None
    table, source = read_config_file(config, cwd)
    values = {name: convert(OPTIONS[name], raw, f"{name} in {source}") for name, raw in table.items()}
    for option in OPTIONS.values():
        if option.env in environ:
            values[option.name] = convert(option, environ[option.env], option.env)
    for name, raw in flags.items():
        values[name] = convert(OPTIONS[name], raw, OPTIONS[name].flags[0])
    limits = replace(Limits(), **{name: values.pop(name) for name in list(values) if OPTIONS[name].limit})
    settings = Settings(**values, limits=limits)
    if settings.workers == 0:
        settings.workers = os.cpu_count() or 1
    _check_tls(settings)
    return settings


def _check_tls(settings: Settings) -> None:
    """TLS settings that agree with each other and files that load (so a HUP with a bad one changes
    nothing); ssl is imported only when TLS is configured."""
    if settings.certfile or settings.keyfile or settings.ca_certs or settings.cert_reqs != "none":
        from .tls import settings_error

        error = settings_error(settings)
        if error:
            raise ConfigError(error)


def read_config_file(path: str | None, cwd: str) -> tuple[dict[str, Any], str]:
    """The settings table of a TOML file (or of ./pyproject.toml's [tool.ehttpd]) and how to name it."""
    if path is None:
        path = "pyproject.toml"
        if not os.path.isfile(os.path.join(cwd, path)):
            return {}, ""
    try:
        with open(os.path.join(cwd, path), "rb") as file:
            table: Any = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    source = path
    if os.path.basename(path) == "pyproject.toml":
        source = f"{path} [tool.ehttpd]"
        tool = table.get("tool", {})
        table = tool.get("ehttpd", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{source} must be a table of settings")
    return _flatten(table, source), source


def _flatten(table: dict[str, Any], source: str) -> dict[str, Any]:
    """Keys may use - or _; limits may also sit in a [limits] sub-table."""
    flat = {}
    for key, value in table.items():
        if key == "limits" and isinstance(value, dict):
            flat.update((_known(k, source, limits_only=True), v) for k, v in value.items())
        else:
            flat[_known(key, source)] = value
    return flat


def _known(key: str, source: str, limits_only: bool = False) -> str:
    name = key.replace("-", "_")
    valid = [n for n, o in OPTIONS.items() if n != "config" and (o.limit or not limits_only)]
    if name not in valid:
        close = difflib.get_close_matches(name, valid, 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown setting {key!r} in {source}{hint}")
    return name


# -- showing settings -------------------------------------------------------------------------------------
def value_of(settings: Settings, option: Option) -> Any:
    return getattr(settings.limits if option.limit else settings, option.name)


def toml_value(option: Option, value: Any) -> str:
    """`value` as TOML; unset is the empty string, which unsets an optional setting again."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if option.parse is _octal:
        return oct(value)
    return json.dumps(value) if isinstance(value, str | list) else repr(value)


def render(settings: Settings) -> str:
    """The effective settings, one per line, as TOML that a config file could hold."""
    lines = [
        f"{o.name} = {toml_value(o, value_of(settings, o))}" for o in OPTIONS.values() if o.name != "config"
    ]
    return "\n".join(lines) + "\n"


def reference() -> str:
    """The Markdown tables of docs/settings.md, one per group of settings."""
    out: list[str] = []
    previous = None
    for option in OPTIONS.values():
        if option.group != previous:
            out += [
                "",
                f"### {option.group}",
                "",
                "| key | flags | environment | default | meaning |",
                "|---|---|---|---|---|",
            ]
            previous = option.group
        flags = ", ".join(
            f"`{f}`" if f.startswith("-") else f"`{f.upper()}` (positional)" for f in option.flags
        )
        default = toml_value(option, option.default)
        meaning = option.help.replace("|", "\\|")
        out.append(f"| `{option.name}` | {flags} | `{option.env}` | `{default}` | {meaning} |")
    return "\n".join(out[1:]) + "\n"


BEGIN, END = "<!-- BEGIN settings reference: generated by ehttpd.config.write_reference -->", "<!-- END -->"


def write_reference(path: str = "docs/settings.md") -> None:
    """Regenerate the reference section of docs/settings.md from the table above."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    with open(path, "w", encoding="utf-8") as file:
        file.write(f"{head}{BEGIN}\n{reference()}{END}{tail}")
