"""ehttpd: a pre-fork, thread-pool HTTP/1.1 server and nano-framework for plain blocking Python."""

from .config import Settings
from .errors import HTTPError
from .headers import Headers
from .raw import RawStream, raw
from .request import Request
from .response import FileBody, Response
from .worker import serve

__version__ = "0.1.0"

__all__ = ["FileBody", "HTTPError", "Headers", "RawStream", "Request", "Response", "Settings", "raw", "serve"]
