"""A certificate authority made on the spot, for TLS tests and benchmarks
on loopback (TURN over TLS to a private coturn). CPython only; uses the
`cryptography` package.

    ca = TestCA(directory)
    cert, key = ca.server("localhost")       # PEM files signed by the CA
    ca.pem, ca.der                           # the CA certificate's files
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=7)))


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory, name="micropython-ice test CA"):
        self.directory = str(directory)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (_builder(_name(name), _name(name), self._key.public_key())
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self._key, hashes.SHA256()))
        tag = name.replace(" ", "-")
        self.pem = self._write(tag + ".pem", self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self._write(tag + ".der", self.cert.public_bytes(serialization.Encoding.DER))

    def server(self, dns_name, *more_names):
        """(certificate file, key file) in PEM for a server called
        `dns_name` and `more_names` (its subjectAltName), signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(n) for n in (dns_name,) + more_names]
        cert = (_builder(_name(dns_name), self.cert.subject, key.public_key())
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(self._key, hashes.SHA256()))
        stem = "server-" + dns_name
        return (self._write(stem + ".pem", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(stem + ".key", key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption())))

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
