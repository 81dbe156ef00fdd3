"""The benchmark's native handler: any path → 200 `Hello world\r\n`."""

from ehttpd import Response

BODY = b"Hello world\r\n"


def app(request):
    return Response(200, BODY, content_type="text/plain")
