#!/usr/bin/env python3
"""Throughput of 64 active keep-alive connections with and without 1,000 idle ones held open beside them.

PEERS.md's bar: with the idle connections, the active ones keep within 20% of the run without them.
Each idle connection makes one request first (so it is a parked keep-alive connection, not a fresh one),
then stays silent. Runs are interleaved (without, with, without, with, ...) and medians compared.

    python scripts/bench_idle.py [--idle 1000] [--rounds 3] [--duration 5] [--workers 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not listen on {port}")


def open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each made one keep-alive request and now stay silent."""
    conns = []
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        conns.append(s)
    for s in conns:
        data = b""
        while b"Hello world" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("an idle connection was closed before its first response")
            data += chunk
    return conns


def wrk(port: int, duration: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}s", f"http://127.0.0.1:{port}/"], capture_output=True, text=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"  wrk reported socket errors: {errors.group(1)}")
    return float(match.group(1)) if match else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 512)), hard))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # keep-alive timeout above the whole run, so the idle connections stay parked throughout
    keepalive = str(args.rounds * 2 * (args.duration + 5) + 60)
    cmd = [
        sys.executable,
        "-m",
        "ehttpd",
        "hello:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--keepalive-timeout",
        keepalive,
        "--max-connections",
        str(args.idle + 500),
    ]
    server = subprocess.Popen(
        cmd,
        cwd=ROOT / "examples",
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)),
    )
    results: dict[str, list[float]] = {"without": [], "with": []}
    try:
        wait_for_port(port)
        wrk(port, 2)  # warm-up
        for r in range(args.rounds):
            results["without"].append(wrk(port, args.duration))
            idle = open_idle(port, args.idle)
            results["with"].append(wrk(port, args.duration))
            alive = sum(1 for s in idle if _still_open(s))
            for s in idle:
                s.close()
            print(
                f"round {r + 1}: without {results['without'][-1]:,.0f} req/s, with {args.idle} idle "
                f"{results['with'][-1]:,.0f} req/s ({alive} idle connections still open after the run)"
            )
            time.sleep(1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    without, with_idle = statistics.median(results["without"]), statistics.median(results["with"])
    print(
        f"median without: {without:,.0f} req/s; with {args.idle} idle: {with_idle:,.0f} req/s; "
        f"ratio {with_idle / without:.2f} (bar: >= 0.80, goal >= 0.95)"
    )
    return 0


def _still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
