#!/usr/bin/env python3
"""ehttpd's throughput, p99 and cost per request at several `--threads` values (docs/architecture.md).

For each round, each thread count and each app, starts `python -m ehttpd APP --workers 2 --threads N` in a
session of its own (as scripts/bench does), warms up for 1 s, runs `wrk -t2 -c64 --latency`, and reports
req/s, p99, and per request: the workers' CPU time and their threads' voluntary and involuntary context
switches (summed over /proc/PID/task/*/status). Rounds are interleaved; the summary gives medians.

    python scripts/bench_threads.py [--threads 2,4,8] [--rounds 3] [--duration 5] [--close] [--pin]

`--pin` runs the server on CPU 0 and wrk on CPU 1, so the two never share a core: the server's cost per
request is then far less noisy, and what the threads of one process do to each other shows alone.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
APPS = {"native": "examples.hello:app", "wsgi": "examples.hello_wsgi:app"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def switches_and_cpu(workers: list[psutil.Process]) -> tuple[int, int, float]:
    voluntary = involuntary = 0
    for worker in workers:
        for path in glob.glob(f"/proc/{worker.pid}/task/*/status"):
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            voluntary += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M).group(1))
            involuntary += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", text, re.M).group(1))
    cpu = sum(sum(worker.cpu_times()[:2]) for worker in workers)
    return voluntary, involuntary, cpu


def one_run(app: str, threads: int, args: argparse.Namespace) -> dict:
    port = free_port()
    server_pin = ["taskset", "-c", "0"] if args.pin else []
    wrk_pin = ["taskset", "-c", "1"] if args.pin else []
    argv = [sys.executable, "-m", "ehttpd", app, "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [*server_pin, *argv, "--threads", str(threads)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(proc.pid).children()) < 2 or not _listening(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"ehttpd did not start: {argv}")
            time.sleep(0.1)
        workers = psutil.Process(proc.pid).children()
        url = f"http://127.0.0.1:{port}/"
        close = ["-H", "Connection: close"] if args.close else []
        subprocess.run([*wrk_pin, "wrk", "-t2", "-c64", "-d1s", *close, url], capture_output=True, check=True)
        before = switches_and_cpu(workers)
        wrk = [*wrk_pin, "wrk", "-t2", "-c64", f"-d{args.duration}s", "--latency", *close, url]
        out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
        after = switches_and_cpu(workers)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99_ms": _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1)),
        "voluntary": (after[0] - before[0]) / requests,
        "involuntary": (after[1] - before[1]) / requests,
        "cpu_us": (after[2] - before[2]) / requests * 1e6,
    }


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="2,4,8", help="comma-separated thread counts")
    parser.add_argument("--apps", default="native,wsgi", help="comma-separated, from: native,wsgi")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--close", action="store_true", help="wrk sends Connection: close")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    args = parser.parse_args()
    counts = [int(n) for n in args.threads.split(",")]
    apps = args.apps.split(",")
    results: dict[tuple[str, int], list[dict]] = {}
    for round_number in range(1, args.rounds + 1):
        for threads in counts:
            for app in apps:
                run = one_run(APPS[app], threads, args)
                results.setdefault((app, threads), []).append(run)
                print(
                    f"round {round_number} {app:6s} --threads {threads}: {run['rps']:,.0f} req/s, "
                    f"p99 {run['p99_ms']:.1f} ms, per request {run['cpu_us']:.1f} µs CPU, "
                    f"{run['voluntary']:.2f} voluntary / {run['involuntary']:.2f} involuntary switches",
                    flush=True,
                )
    mode = "close" if args.close else "keep-alive"
    print(f"\nmedians of {args.rounds} rounds x {args.duration}s, {mode}{', pinned' if args.pin else ''}:")
    print("| app | threads | req/s | p99 | CPU µs / request | voluntary / involuntary switches / request |")
    print("|---|---:|---:|---:|---:|---|")
    for (app, threads), runs in results.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(
            f"| {app} | {threads} | {med['rps']:,.0f} | {med['p99_ms']:.1f} ms | {med['cpu_us']:.1f} | "
            f"{med['voluntary']:.2f} / {med['involuntary']:.2f} |"
        )


if __name__ == "__main__":
    main()
