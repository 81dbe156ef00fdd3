#!/usr/bin/env python3
"""What plain CPython sockets cost on this machine: a reference for scripts/bench, not a server.

The probe of ../shared/PEERS.md: PROCESSES forked processes, each with THREADS threads blocking in
accept() on one shared listening socket, then serving their connection with blocking recv/sendall: no
parsing, no limits, no validation. Every recv is taken as one whole request and answered with
`Hello world\\r\\n`; a request naming `close` gets `Connection: close` and the connection is closed. What it
does per request is the least any Python server does, so its figures bound what a Python server can reach.

    scripts/cpython_floor.py --port 8080 --processes 2 --threads 4
"""

from __future__ import annotations

import argparse
import os
import socket
import threading

BODY = b"Hello world\r\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
KEEP = HEAD + b"\r\n" + BODY
CLOSE = HEAD + b"Connection: close\r\n\r\n" + BODY


def serve_forever(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                serve_connection(conn)
            except OSError:  # the client reset the connection
                pass


def serve_connection(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        if b"close" in data.lower():
            conn.sendall(CLOSE)
            return
        conn.sendall(KEEP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    listener = socket.create_server((args.host, args.port), backlog=1024)
    for _ in range(args.processes - 1):
        if os.fork() == 0:
            break
    threads = [threading.Thread(target=serve_forever, args=(listener,)) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
