"""A raw connection handler: echoes each line back; `quit` ends the connection."""

import ehttpd


@ehttpd.raw
def app(stream: ehttpd.RawStream) -> bool:
    line = stream.readline()
    if not line:
        return False
    if line.strip() == b"quit":
        stream.write(b"bye\n")
        return False
    stream.write(b"echo: " + line)
    return True
