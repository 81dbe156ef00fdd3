"""For the master's tests: `/hang` hangs the whole worker, `/stuck` one request; `/` answers the pid.

`/hang` runs a regular expression with catastrophic backtracking: the `re` engine holds the GIL for its
whole match (minutes here), so the worker's main loop stops too and its heartbeat goes silent.
`/stuck` sleeps in its thread (releasing the GIL): one stuck request in an otherwise healthy worker.
"""

import os
import re
import time

from ehttpd import Response


def app(request):
    if request.path == "/hang":
        re.match(r"(a+)+$", "a" * 34 + "!")
    elif request.path == "/stuck":
        time.sleep(120)
    return Response.text(f"{os.getpid()}\n")
