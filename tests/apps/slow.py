"""For the master's tests: `/` answers the worker's pid; `/slow?s=2` answers it after sleeping 2 seconds."""

import os
import time

from ehttpd import Response


def app(request):
    if request.path == "/slow":
        time.sleep(float(request.query_value("s", "2")))
    return Response.text(f"{os.getpid()}\n")
