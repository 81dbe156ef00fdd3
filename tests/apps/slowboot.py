"""For the master's tests: importing it takes $EHTTPD_TEST_BOOT seconds (a big application's import)."""

import os
import time

from ehttpd import Response

time.sleep(float(os.environ.get("EHTTPD_TEST_BOOT", "0")))


def app(request):
    return Response.text(f"{os.getpid()}\n")
