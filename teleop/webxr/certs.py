"""Self-signed TLS certificate for the WebXR page (browsers only grant WebXR to secure origins).

Made on first run with the `cryptography` package (an ECDSA P-256 key, subject alternative names for
localhost, this host's name and addresses) and reused afterwards; the operator checks the SHA-256
fingerprint the teleop process prints against the one the headset's browser shows before accepting it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_NAME = "teleop_cert.pem"
KEY_NAME = "teleop_key.pem"


def _names() -> tuple[list[str], list[str]]:
    host = socket.gethostname()
    dns = sorted({"localhost", host})
    ips = {"127.0.0.1"}
    with contextlib.suppress(OSError):
        ips.update(socket.gethostbyname_ex(host)[2])
    return dns, sorted(ips)


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint of a PEM certificate, as browsers show it (AB:CD:...)."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def ensure_certificate(cert_dir: Path, days: int = 825) -> tuple[Path, Path, bool]:
    """(certificate, key, created) in `cert_dir`, generating both when either is missing."""
    cert_dir = Path(os.path.expanduser(str(cert_dir)))
    cert_path, key_path = cert_dir / CERT_NAME, cert_dir / KEY_NAME
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path, False
    cert_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = _names()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a2world teleop"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A2World robot lab")])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key is readable by us only
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path, True
