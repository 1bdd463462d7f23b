"""DTLS client for data channels (RFC 8261), over the ICE pair instead of a
socket: records in and out as datagrams, the peer's certificate checked
against the fingerprint its SDP gave (RFC 8122 §5, RFC 8842).

    dtls = DtlsClient(cert_der, key_der, "sha-256", digest, send, on_packet)
    dtls.start()                 # ClientHello out through send(record)
    dtls.receive(record)         # a datagram whose first byte is 20-63 (RFC 7983 §7)
    dtls.send(packet)            # encrypt one SCTP packet
    dtls.timeout_ms()            # poll again within this while handshaking, else None
    dtls.poll()                  # resend a lost flight when its timer ran out

`send(record)` must not block (it drops a record when the socket is
full: SCTP and the handshake's timers send again). Decrypted packets go
to `on_packet(view)`; the view lasts the call. State: "new",
"connecting", "connected", "failed" with `error` saying why. A packet
sent while connecting waits (one, the latest: SCTP's INIT) and goes the
moment the handshake ends; on MicroPython, whose `tls` does not tell when
the handshake is over, that write going through is how we learn it.

The camera is the client (`a=setup:active`): mbedTLS as server would need
HelloVerify and, before 3.6.6, rejects Chrome's fragmented ClientHello.
MicroPython uses its `tls` module (mbedTLS) over a stream object fed from
here; mbedTLS keeps the handshake's timers itself. CPython uses pyOpenSSL
with memory buffers.
"""

import hashlib

from ice.compat import IS_MICROPYTHON


def is_record(data):
    """RFC 7983 §7: a first byte of 20-63 is DTLS."""
    return len(data) >= 13 and 20 <= data[0] <= 63


def digest_of(cert_der, algorithm="sha-256"):
    if algorithm == "sha-256":
        return hashlib.sha256(cert_der).digest()
    if algorithm == "sha-1":
        return hashlib.sha1(cert_der).digest()
    raise ValueError("fingerprint hash %r: sha-256 or sha-1 only" % algorithm)


def format_fingerprint(digest):
    """`AB:CD:...` as SDP writes it (RFC 8122 §5)."""
    return ":".join("%02X" % b for b in digest)


def parse_fingerprint(text):
    """The digest bytes of `AB:CD:...`; ValueError when malformed."""
    parts = text.strip().split(":")
    if len(parts) not in (20, 32) or any(len(p) != 2 for p in parts):
        raise ValueError("bad fingerprint: %r" % text)
    return bytes(int(p, 16) for p in parts)


def _same(a, b):
    """Digests compared in constant time."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


class _Base:
    def __init__(self, algorithm, digest, send, on_packet):
        self.algorithm = algorithm
        self.expected = digest
        self.send_record = send
        self.on_packet = on_packet
        self.state = "new"
        self.error = None
        self.peer_digest = None
        self._waiting = None  # a packet sent while connecting
        self.counters = {"records_in": 0, "records_out": 0, "packets_in": 0, "packets_out": 0,
                         "not_sent": 0, "bad_records": 0}

    def _fail(self, why):
        if self.state != "failed":
            self.state = "failed"
            self.error = why

    def _check_certificate(self, cert_der):
        """True when the peer's certificate is the one its SDP named."""
        self.peer_digest = digest_of(cert_der, self.algorithm)
        if _same(self.peer_digest, self.expected):
            return True
        self._fail("DTLS: the peer's certificate does not match the fingerprint in its SDP")
        return False


if IS_MICROPYTHON:
    import io

    import tls

    class _Pipe(io.IOBase):
        """What mbedTLS reads from and writes to: one datagram at a time."""

        def __init__(self, owner):
            self.owner = owner
            self.pending = None

        def readinto(self, buf):
            data = self.pending
            if data is None:
                return None  # nothing yet: mbedTLS wants to read later
            self.pending = None
            n = len(data)
            if n > len(buf):
                return 0
            buf[:n] = data
            return n

        def write(self, record):
            owner = self.owner
            owner.counters["records_out"] += 1
            if not owner.send_record(record):
                owner.counters["not_sent"] += 1
            return len(record)

        def ioctl(self, request, arg):
            return 0

    class _MbedTlsClient(_Base):
        def __init__(self, cert_der, key_der, algorithm, digest, send, on_packet, mtu=1200):
            _Base.__init__(self, algorithm, digest, send, on_packet)
            ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
            ctx.load_cert_chain(cert_der, key_der)
            ctx.verify_mode = tls.CERT_OPTIONAL  # pyright: ignore[reportAttributeAccessIssue]  (self-signed: the fingerprint is the check)

            def verify(cert, depth):
                return 0 if depth or self._check_certificate(cert) else 8  # 8: BADCERT_NOT_TRUSTED

            ctx.verify_callback = verify  # pyright: ignore[reportAttributeAccessIssue]
            self._ctx = ctx
            self._pipe = _Pipe(self)
            self._buf = bytearray(mtu + 100)
            self._view = memoryview(self._buf)
            self._ssl = None

        def start(self):
            if self.state != "new":
                return
            self.state = "connecting"
            self._ssl = self._ctx.wrap_socket(self._pipe, server_side=False, do_handshake_on_connect=False)
            self._read()

        def receive(self, record):
            if self._ssl is None or self.state == "failed":
                return
            self.counters["records_in"] += 1
            self._pipe.pending = record
            self._read()

        def _read(self):
            ssl = self._ssl
            while True:
                try:
                    if self.state == "connecting" and self._waiting is not None and \
                            ssl.write(self._waiting) is not None:
                        self._waiting = None  # written: the handshake is over
                        self.state = "connected"
                        self.counters["packets_out"] += 1
                    n = ssl.readinto(self._buf)
                except OSError as exc:
                    if self.state == "connected":
                        self.counters["bad_records"] += 1  # mbedTLS drops a bad record and goes on
                        if self._pipe.pending is None:
                            return
                        continue
                    self._fail(self.error or "DTLS handshake failed: %s" % (exc,))
                    return
                if not n:
                    return
                self.state = "connected"
                self.counters["packets_in"] += 1
                self.on_packet(self._view[:n])

        def send(self, packet):
            if self.state == "connecting":
                self._waiting = bytes(packet)
                self._read()
                return self._waiting is None
            if self.state != "connected":
                return False
            n = self._ssl.write(packet)
            if n is None:
                return False
            self.counters["packets_out"] += 1
            return True

        def timeout_ms(self):
            return 50 if self.state == "connecting" else None  # mbedTLS times the flights itself

        def poll(self):
            if self.state == "connecting":
                self._read()

        def close(self):
            if self._ssl is not None:
                try:
                    self._ssl.close()
                except OSError:
                    pass
                self._ssl = None
            if self.state != "failed":
                self.state = "closed"

else:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL  # pyright: ignore[reportMissingModuleSource]

    class _OpenSslClient(_Base):
        def __init__(self, cert_der, key_der, algorithm, digest, send, on_packet, mtu=1200):
            _Base.__init__(self, algorithm, digest, send, on_packet)
            ctx = SSL.Context(SSL.DTLS_CLIENT_METHOD)
            ctx.use_certificate(x509.load_der_x509_certificate(cert_der))
            ctx.use_privatekey(serialization.load_der_private_key(key_der, None))
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
            self._ssl = SSL.Connection(ctx, None)
            self._ssl.set_connect_state()
            if hasattr(self._ssl, "set_ciphertext_mtu"):
                self._ssl.set_ciphertext_mtu(mtu)
            self._mtu = mtu

        def start(self):
            if self.state != "new":
                return
            self.state = "connecting"
            self._handshake()

        def _flush(self):
            while True:
                try:
                    record = self._ssl.bio_read(self._mtu + 100)
                except SSL.WantReadError:
                    return
                self.counters["records_out"] += 1
                if not self.send_record(record):
                    self.counters["not_sent"] += 1

        def _handshake(self):
            try:
                self._ssl.do_handshake()
            except SSL.WantReadError:
                self._flush()
                return
            except SSL.Error as exc:
                self._flush()
                self._fail("DTLS handshake failed: %s" % (exc,))
                return
            self._flush()
            cert = self._ssl.get_peer_certificate(as_cryptography=True)
            if cert is None or not self._check_certificate(cert.public_bytes(serialization.Encoding.DER)):
                self._fail(self.error or "DTLS: the peer sent no certificate")
                return
            self.state = "connected"
            if self._waiting is not None:
                self.send(self._waiting)
                self._waiting = None

        def receive(self, record):
            if self.state in ("new", "failed", "closed"):
                return
            self.counters["records_in"] += 1
            self._ssl.bio_write(bytes(record))
            if self.state == "connecting":
                self._handshake()
                if self.state != "connected":
                    return
            while True:
                try:
                    packet = self._ssl.recv(65536)
                except SSL.WantReadError:
                    break
                except SSL.ZeroReturnError:
                    self._fail("DTLS: closed by the peer")
                    break
                except SSL.Error:
                    self.counters["bad_records"] += 1
                    break
                self.counters["packets_in"] += 1
                self.on_packet(memoryview(packet))
            self._flush()

        def send(self, packet):
            if self.state == "connecting":
                self._waiting = bytes(packet)
                return False
            if self.state != "connected":
                return False
            self._ssl.send(bytes(packet))
            self.counters["packets_out"] += 1
            self._flush()
            return True

        def timeout_ms(self):
            if self.state != "connecting":
                return None
            seconds = self._ssl.DTLSv1_get_timeout()
            return 50 if seconds is None else max(1, int(seconds * 1000))

        def poll(self):
            if self.state == "connecting":
                self._ssl.DTLSv1_handle_timeout()
                self._flush()

        def close(self):
            if self.state == "connected":
                try:
                    self._ssl.shutdown()
                except SSL.Error:
                    pass
                self._flush()
            if self.state != "failed":
                self.state = "closed"

DtlsClient = _MbedTlsClient if IS_MICROPYTHON else _OpenSslClient  # pyright: ignore[reportPossiblyUnbound]
