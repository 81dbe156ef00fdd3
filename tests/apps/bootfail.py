"""For the master's tests: imports once (the launcher's check), then fails in every worker that boots.

The first import creates the file named by EHTTPD_TEST_MARK; every later import finds it and raises.
"""

import os

MARK = os.environ["EHTTPD_TEST_MARK"]
if os.path.exists(MARK):
    raise RuntimeError("this app fails to boot on purpose")
with open(MARK, "w"):
    pass


def app(request):
    raise AssertionError("never served")
