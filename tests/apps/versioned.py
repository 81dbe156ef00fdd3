"""For the master's reload test, copied to a temporary --chdir and edited there: answers VERSION and pid."""

import os

from ehttpd import Response

VERSION = "one"


def app(request):
    return Response.text(f"{VERSION} {os.getpid()}\n")
