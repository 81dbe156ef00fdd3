"""The launcher: `ehttpd module:app [flags]`, and `ehttpd reload|stop|status` for a running server.

Every flag is derived from the settings table in config.py; a bad value, file or app ends the launch with
one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import NoReturn

from . import __version__
from .config import OPTIONS, ConfigError, Settings, render, resolve
from .loader import AppLoadError, load_app

CONTROL_COMMANDS = ("reload", "stop", "status")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        self.exit(2, f"ehttpd: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Flags for every option; only the flags given end up in the namespace (defaults come later)."""
    parser = _Parser(
        prog="ehttpd",
        description="Serve a native handler or WSGI app with pre-forked thread-pool workers.",
        epilog="Control a running server: ehttpd reload|stop|status --pid FILE. "
        "Settings, their environment names and precedence: docs/settings.md.",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate, print the effective settings, exit"
    )
    parser.add_argument("--version", action="version", version=f"ehttpd {__version__}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in OPTIONS.values():
        group = groups.get(option.group) or groups.setdefault(
            option.group, parser.add_argument_group(option.group)
        )
        help = option.help.replace("%", "%%")  # argparse %-formats help texts
        if not option.flags[0].startswith("-"):
            group.add_argument(option.name, nargs="?", default=argparse.SUPPRESS, help=help)
            continue
        kwargs = {"dest": option.name, "default": argparse.SUPPRESS, "help": help}
        if option.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif option.kind is list:
            kwargs["action"] = "append"
        group.add_argument(*option.flags, **kwargs)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CONTROL_COMMANDS:
        return _control(argv)
    flags = vars(build_parser().parse_args(argv))
    check_only = flags.pop("check_config")
    early = [] if check_only else _keep_early_signals()
    try:
        settings = resolve(flags)
        if not settings.app:
            raise ConfigError("no app given: ehttpd module:app (or app = ... in the config file)")
    except ConfigError as exc:
        return _fail(str(exc))
    error = app_load_error(settings) or (None if check_only else _setup_logs(settings))
    if error:
        return _fail(error)
    if check_only:
        print(render(settings), end="")
        return 0
    from .master import run

    return run(settings, lambda: resolve(flags), early)  # HUP re-reads the file and environment


def _keep_early_signals() -> list[int]:
    """Until the master's handlers are in place (after the import check, binding, --preload: seconds for
    a big app), HUP, USR1, USR2, TTIN and TTOU would end the launcher by their default action: record
    them instead, for the master to act on once it runs (logrotate's USR1 may come at any time)."""
    early: list[int] = []
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    return early


def _control(argv: list[str]) -> int:
    """`ehttpd reload|stop|status`; without --pid, the pidfile of the settings (config file, environment)."""
    from .control import main as control_main  # only the control commands need it

    if not any(arg.startswith(("-p", "--pid")) for arg in argv[1:]):
        try:
            pidfile = resolve({}).pidfile
        except ConfigError as exc:
            return _fail(str(exc))
        argv += ["--pid", pidfile] if pidfile else []
    return control_main(argv)


def _setup_logs(settings: Settings) -> str | None:
    """Set up the error log, and check that the access log opens (each worker opens its own); why not."""
    return _setup_logging(settings) or _access_log_error(settings)


def _access_log_error(settings: Settings) -> str | None:
    path = settings.access_log
    if not path or path == "-":
        return None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError as exc:
        return f"cannot open the access log {path!r}: {exc.strerror}"
    return None


def _setup_logging(settings: Settings) -> str | None:
    """Log to stderr or to the --error-log file (reopened on USR1); why not, if it cannot be opened."""
    try:
        handler = (
            logging.StreamHandler() if settings.error_log == "-" else logging.FileHandler(settings.error_log)
        )
    except OSError as exc:
        return f"cannot open the error log {settings.error_log!r}: {exc.strerror}"
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    return None


def app_load_error(settings: Settings) -> str | None:
    """Import the app in a throw-away child: a broken app fails the launch with one line and exit 2, and
    the master itself stays free of application modules, so each HUP loads the code afresh."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into the caller's stack
        os.close(read_fd)
        error: str | None = f"importing {settings.app!r} failed"
        try:
            error = _load(settings)[1]
        finally:
            if error:
                os.write(write_fd, error.encode(errors="replace"))
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2 if error else 0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return message or f"importing {settings.app!r} killed its process (wait status {status})"


def _load(settings: Settings) -> tuple[object, str | None]:
    """The app, or why it could not be loaded (one line)."""
    try:
        return load_app(settings.app, settings.chdir), None
    except AppLoadError as exc:
        return None, str(exc)
    except (SystemExit, KeyboardInterrupt) as exc:
        return None, f"importing {settings.app!r} raised {type(exc).__name__}"


def _fail(message: str) -> int:
    print("ehttpd: error: " + " ".join(message.split()), file=sys.stderr)
    return 2
