"""Make a camera's DTLS certificate (ECDSA P-256, self-signed), the one
browsers check against the fingerprint in the camera's SDP answers.

    python tools/dtls_cert.py OUT_DIR [--days 3650]

Writes OUT_DIR/dtls_cert.der and OUT_DIR/dtls_key.der (mode 600) and
prints the sha-256 fingerprint. Made on the host at provisioning: a board
has no key generation; `make deploy` copies both files to it. An existing
pair is kept (its fingerprint printed) unless --force.
"""

import argparse
import datetime
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_NAME = "dtls_cert.der"
KEY_NAME = "dtls_key.der"


def fingerprint(cert_der):
    return ":".join("%02X" % b for b in hashlib.sha256(cert_der).digest())


def make(out_dir, days=3650, force=False):
    """(cert path, key path) in out_dir, made unless they exist."""
    cert_path, key_path = os.path.join(out_dir, CERT_NAME), os.path.join(out_dir, KEY_NAME)
    if not force and os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    os.makedirs(out_dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "icecam")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    # SEC1 ("traditional") DER: what MicroPython's tls.load_cert_chain reads
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_der)
    return cert_path, key_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--days", type=int, default=3650)
    parser.add_argument("--force", action="store_true", help="replace an existing pair")
    args = parser.parse_args(argv)
    cert_path, _ = make(args.out_dir, args.days, args.force)
    with open(cert_path, "rb") as f:
        print("sha-256 %s  (%s)" % (fingerprint(f.read()), cert_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
