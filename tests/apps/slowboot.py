"""For the master's tests: importing it takes $EHTTPD_TEST_BOOT seconds (a big application's import);
`/stuck` never finishes (well, in 120 s)."""

import os
import time

from ehttpd import Response

time.sleep(float(os.environ.get("EHTTPD_TEST_BOOT", "0")))


def app(request):
    if request.path == "/stuck":
        time.sleep(120)
    return Response.text(f"{os.getpid()}\n")
