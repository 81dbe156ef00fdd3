"""For the master's tests: each `/grow` keeps 16 MB more alive in this worker; `/` answers the pid."""

import os

from ehttpd import Response

HOARD = []


def app(request):
    if request.path == "/grow":
        HOARD.append(bytearray(16 * 2**20))  # bytearray(n) is zero-filled: the pages are really touched
    return Response.text(f"{os.getpid()}\n")
