"""Certificates made at test time with the openssl command-line tool: a test CA, two server certificates
(for 127.0.0.1 and localhost) and client certificates, one from the CA and one from a stranger CA."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ehttpd test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
"""
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass
class Pair:
    cert: Path
    key: Path

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())


@dataclass
class Certs:
    ca: Pair
    server: Pair  # signed by ca
    server2: Pair  # signed by ca, another serial: the certificate swapped in before a HUP
    client: Pair  # signed by ca
    stranger: Pair  # a client certificate from a CA the server does not know


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30)


def _ca(directory: Path, name: str) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    args = ["req", "-x509", *EC_KEY, "-keyout", pair.key, "-out", pair.cert, "-days", "2"]
    _openssl(*args, "-subj", f"/CN={name}", "-config", "x509.cnf", "-extensions", "ca", cwd=directory)
    return pair


def _signed(directory: Path, name: str, ca: Pair, kind: str, serial: int) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    args = ["req", "-new", *EC_KEY, "-keyout", pair.key, "-out", csr, "-subj", f"/CN={name}"]
    _openssl(*args, "-config", "x509.cnf", cwd=directory)
    args = ["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", str(serial)]
    _openssl(
        *args, "-days", "2", "-out", pair.cert, "-extfile", "x509.cnf", "-extensions", kind, cwd=directory
    )
    return pair


def make_certs(directory: Path) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command-line tool is needed to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "x509.cnf").write_text(CONFIG)
    ca = _ca(directory, "ca")
    other = _ca(directory, "stranger-ca")
    return Certs(
        ca=ca,
        server=_signed(directory, "server", ca, "server", 1001),
        server2=_signed(directory, "server2", ca, "server", 1002),
        client=_signed(directory, "client", ca, "client", 2001),
        stranger=_signed(directory, "stranger", other, "client", 3001),
    )


def client_context(certs: Certs, cert: Pair | None = None) -> ssl.SSLContext:
    """A client context trusting the test CA, optionally presenting `cert`."""
    context = ssl.create_default_context(cafile=str(certs.ca.cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return context
