"""The launcher: `ehttpd module:app --bind HOST:PORT --threads N`."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import Settings
from .interface import INTERFACES
from .loader import AppLoadError, load_app
from .worker import serve

DEFAULTS = Settings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ehttpd", description="Serve a native handler or WSGI app.")
    parser.add_argument("app", help="module:app, module:factory() or module (means module:app)")
    parser.add_argument("-b", "--bind", action="append", help="HOST:PORT, [V6]:PORT, unix:PATH or fd://N")
    parser.add_argument("--threads", type=int, default=DEFAULTS.threads, help="pool threads per process")
    parser.add_argument("--chdir", help="directory to import the app from (default: the current one)")
    parser.add_argument("--interface", choices=INTERFACES, default="auto")
    parser.add_argument("--root-path", default="", help="WSGI SCRIPT_NAME")
    parser.add_argument("--max-connections", type=int, default=DEFAULTS.max_connections)
    parser.add_argument("--header-timeout", type=float, default=DEFAULTS.header_timeout)
    parser.add_argument("--keepalive-timeout", type=float, default=DEFAULTS.keepalive_timeout)
    parser.add_argument("--body-timeout", type=float, default=DEFAULTS.body_timeout)
    parser.add_argument("--graceful-timeout", type=float, default=30.0)
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
        stream=sys.stderr,
    )
    try:
        app = load_app(args.app, args.chdir)
    except AppLoadError as exc:
        print(f"ehttpd: error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        bind=args.bind or ["127.0.0.1:8000"],
        threads=args.threads,
        interface=args.interface,
        root_path=args.root_path,
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        keepalive_timeout=args.keepalive_timeout,
        body_timeout=args.body_timeout,
    )
    serve(app, settings=settings, graceful_timeout=args.graceful_timeout)
    return 0
