"""STUN and TURN message codec (RFC 8489, RFC 8656) over caller-owned buffers.

Decoding keeps a memoryview of the datagram and records where the integrity
and fingerprint attributes sit; attribute values are handed out as views into
the datagram, so a message is valid until its buffer is reused. Everything
malformed raises `StunError` and nothing else.

Encoding appends attributes to a caller-owned `bytearray` through `Writer`,
keeping the header length current, and finishes with MESSAGE-INTEGRITY and
FINGERPRINT computed over the buffer in place.
"""

import struct

from ice import digest
from ice.compat import Recent, const, ip_from_bytes, ip_to_bytes, urandom


class StunError(ValueError):
    """A STUN/TURN message or ChannelData frame that breaks the wire rules."""


MAGIC_COOKIE = const(0x2112A442)
HEADER_SIZE = const(20)

# Message classes, already in their bit positions (RFC 8489 §5).
REQUEST = const(0x0000)
INDICATION = const(0x0010)
SUCCESS = const(0x0100)
ERROR = const(0x0110)

# Methods: RFC 8489 §18.2 (TURN's are in ice.turn).
BINDING = const(0x001)

# Message types (methods below 0x10 need no bit shuffling).
BINDING_REQUEST = const(0x0001)
BINDING_INDICATION = const(0x0011)
BINDING_SUCCESS = const(0x0101)
BINDING_ERROR = const(0x0111)

# Attributes: RFC 8489 §18.3, RFC 8445 §16.1 (TURN's are in ice.turn).
MAPPED_ADDRESS = const(0x0001)
USERNAME = const(0x0006)
MESSAGE_INTEGRITY = const(0x0008)
ERROR_CODE = const(0x0009)
UNKNOWN_ATTRIBUTES = const(0x000A)
REALM = const(0x0014)
NONCE = const(0x0015)
MESSAGE_INTEGRITY_SHA256 = const(0x001C)
PASSWORD_ALGORITHM = const(0x001D)
USERHASH = const(0x001E)
XOR_MAPPED_ADDRESS = const(0x0020)
PRIORITY = const(0x0024)
USE_CANDIDATE = const(0x0025)
PASSWORD_ALGORITHMS = const(0x8002)
ALTERNATE_DOMAIN = const(0x8003)
SOFTWARE = const(0x8022)
ALTERNATE_SERVER = const(0x8023)
FINGERPRINT = const(0x8028)
ICE_CONTROLLED = const(0x8029)
ICE_CONTROLLING = const(0x802A)

# Comprehension-required attributes (below 0x8000) this codec understands;
# any other one in a request calls for a 420 (RFC 8489 §6.3.1.1).
KNOWN_REQUIRED = (
    MAPPED_ADDRESS, USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, UNKNOWN_ATTRIBUTES, REALM, NONCE,
    MESSAGE_INTEGRITY_SHA256, PASSWORD_ALGORITHM, USERHASH, XOR_MAPPED_ADDRESS, PRIORITY, USE_CANDIDATE,
    # RFC 8656 §18: CHANNEL-NUMBER, LIFETIME, XOR-PEER-ADDRESS, DATA, XOR-RELAYED-ADDRESS,
    # REQUESTED-ADDRESS-FAMILY, EVEN-PORT, REQUESTED-TRANSPORT, DONT-FRAGMENT, RESERVATION-TOKEN
    0x000C, 0x000D, 0x0012, 0x0013, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x0022,
)

FAMILY_IPV4 = const(0x01)
FAMILY_IPV6 = const(0x02)



def message_type(method, cls):
    """Interleave a 12-bit method and a class into a message type (§5)."""
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls


def method_of(msg_type):
    return (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)


def class_of(msg_type):
    return msg_type & 0x0110


def new_txid():
    """A fresh 96-bit transaction ID from the platform's CSPRNG (§5)."""
    return urandom(12)


def looks_like_stun(data):
    """RFC 7983 demultiplexing: first byte 0-3 and the magic cookie in place."""
    return (
        len(data) >= HEADER_SIZE
        and data[0] < 4
        and data[4] == 0x21 and data[5] == 0x12 and data[6] == 0xA4 and data[7] == 0x42
    )


_INTEGRITY_TYPES = (FINGERPRINT, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256)


def _u16(data, off):
    return (data[off] << 8) | data[off + 1]


def _u32(data, off):
    return (data[off] << 24) | (data[off + 1] << 16) | (data[off + 2] << 8) | data[off + 3]


class Message:
    """A decoded STUN message; reuse one with `parse()` to avoid allocation."""

    def __init__(self):
        self.data = memoryview(b"")
        self.type = 0
        self._end = 0  # attributes at or past here are ignored (after MI)
        self._mi = -1  # offsets of the attribute headers, -1 when absent
        self._mi256 = -1
        self._fp = -1

    def __repr__(self):
        return "<stun.Message type=0x%04x len=%d>" % (self.type, len(self.data))

    @property
    def txid(self):
        """The transaction ID as bytes (a copy: read it once per message)."""
        return bytes(self.data[8:20])

    @property
    def method(self):
        return method_of(self.type)

    @property
    def cls(self):
        return class_of(self.type)

    def parse(self, data):
        """Validate `data` as one STUN message and point this object at it."""
        size = len(data)
        if size < HEADER_SIZE:
            raise StunError("%d bytes is shorter than a STUN header" % size)
        if data[0] & 0xC0:
            raise StunError("the top two bits of a STUN message must be zero")
        if data[4] != 0x21 or data[5] != 0x12 or data[6] != 0xA4 or data[7] != 0x42:
            raise StunError("magic cookie missing (RFC 3489 messages are not supported)")
        length = (data[2] << 8) | data[3]
        if length & 3:
            raise StunError("message length %d is not a multiple of 4" % length)
        if length + HEADER_SIZE != size:
            raise StunError("length field %d does not match a %d-byte datagram" % (length, size))
        mi = mi256 = fp = -1
        end = size
        off = HEADER_SIZE
        while off < size:
            alen = (data[off + 2] << 8) | data[off + 3]
            after = off + 4 + ((alen + 3) & ~3)
            atype = (data[off] << 8) | data[off + 1]
            if after > size:
                raise StunError("attribute 0x%04x runs past the end of the message" % atype)
            if atype in _INTEGRITY_TYPES:
                if atype == FINGERPRINT:
                    if alen != 4:
                        raise StunError("FINGERPRINT must be 4 bytes")
                    if fp < 0:
                        fp = off
                elif atype == MESSAGE_INTEGRITY:
                    if mi < 0 and mi256 < 0:
                        if alen != 20:
                            raise StunError("MESSAGE-INTEGRITY must be 20 bytes")
                        mi = off
                elif mi256 < 0:
                    if alen < 16 or alen > 32 or alen & 3:
                        raise StunError("MESSAGE-INTEGRITY-SHA256 must be 16-32 bytes, a multiple of 4")
                    mi256 = off
                if end == size:
                    end = off  # RFC 8489 §14.5: what follows integrity is ignored
            off = after
        if fp >= 0 and fp + 8 != size:
            raise StunError("FINGERPRINT must be the last attribute (RFC 8489 §14.7)")
        self.data = data if isinstance(data, memoryview) else memoryview(data)
        self.type = (data[0] << 8) | data[1]
        self._end = end
        self._mi = mi
        self._mi256 = mi256
        self._fp = fp
        return self

    def _find(self, attr_type):
        """Offset of the first `attr_type` attribute header, or -1."""
        if attr_type == MESSAGE_INTEGRITY:
            return self._mi
        if attr_type == MESSAGE_INTEGRITY_SHA256:
            return self._mi256
        if attr_type == FINGERPRINT:
            return self._fp
        data = self.data
        end = self._end
        off = HEADER_SIZE
        while off < end:
            if (data[off] << 8) | data[off + 1] == attr_type:
                return off
            off += 4 + ((((data[off + 2] << 8) | data[off + 3]) + 3) & ~3)
        return -1

    def has(self, attr_type):
        return self._find(attr_type) >= 0

    def get(self, attr_type):
        """The first value of `attr_type` as a memoryview, or None."""
        off = self._find(attr_type)
        if off < 0:
            return None
        data = self.data
        return data[off + 4 : off + 4 + ((data[off + 2] << 8) | data[off + 3])]

    def get_str(self, attr_type):
        value = self.get(attr_type)
        if value is None:
            return None
        try:
            return str(value, "utf-8")
        except UnicodeError:
            raise StunError("attribute 0x%04x is not valid UTF-8" % attr_type)

    def get_u32(self, attr_type):
        off = self._find(attr_type)
        if off < 0:
            return None
        data = self.data
        if data[off + 2] or data[off + 3] != 4:
            raise StunError("attribute 0x%04x must be 4 bytes" % attr_type)
        return (data[off + 4] << 24) | (data[off + 5] << 16) | (data[off + 6] << 8) | data[off + 7]

    def get_u64(self, attr_type):
        value = self.get(attr_type)
        if value is None:
            return None
        if len(value) != 8:
            raise StunError("attribute 0x%04x must be 8 bytes" % attr_type)
        return (_u32(value, 0) << 32) | _u32(value, 4)

    def address(self, attr_type, xor=False):
        """(ip, port) from an address attribute (§14.1, §14.2), or None."""
        value = self.get(attr_type)
        if value is None:
            return None
        if len(value) < 4:
            raise StunError("address attribute 0x%04x is too short" % attr_type)
        family = value[1]
        if family == FAMILY_IPV4:
            size = 4
        elif family == FAMILY_IPV6:
            size = 16
        else:
            raise StunError("unknown address family 0x%02x" % family)
        if len(value) != 4 + size:
            raise StunError("address attribute 0x%04x has the wrong length" % attr_type)
        port = _u16(value, 2)
        packed = bytearray(value[4:])
        if xor:
            port ^= MAGIC_COOKIE >> 16
            head = self.data[4:20]  # cookie, then transaction ID for IPv6
            for i in range(size):
                packed[i] ^= head[i]
        return ip_from_bytes(packed), port

    def xor_address(self, attr_type):
        return self.address(attr_type, True)

    def xor_mapped_address(self):
        return self.address(XOR_MAPPED_ADDRESS, True)

    def error_code(self):
        """(code, reason) from ERROR-CODE (§14.8), or None."""
        value = self.get(ERROR_CODE)
        if value is None:
            return None
        if len(value) < 4:
            raise StunError("ERROR-CODE is too short")
        klass = value[2] & 0x07
        number = value[3]
        if klass < 3 or klass > 6 or number > 99:
            raise StunError("ERROR-CODE %d%02d is out of range" % (klass, number))
        try:
            reason = str(value[4:], "utf-8")
        except UnicodeError:
            raise StunError("ERROR-CODE reason is not valid UTF-8")
        return klass * 100 + number, reason

    def unknown_attributes(self):
        value = self.get(UNKNOWN_ATTRIBUTES)
        if value is None:
            return []
        if len(value) & 1:
            raise StunError("UNKNOWN-ATTRIBUTES must hold 16-bit types")
        return [_u16(value, i) for i in range(0, len(value), 2)]

    def unknown_required(self, known=KNOWN_REQUIRED):
        """Comprehension-required attribute types not in `known` (§6.3.1.1);
        an empty tuple, which costs nothing, when there are none."""
        out = ()
        data = self.data
        off = HEADER_SIZE
        while off < self._end:
            atype = (data[off] << 8) | data[off + 1]
            if atype < 0x8000 and atype not in known and atype not in out:
                out = out + (atype,)
            off += 4 + ((((data[off + 2] << 8) | data[off + 3]) + 3) & ~3)
        return out

    def check_integrity(self, key):
        """True when MESSAGE-INTEGRITY (HMAC-SHA1, §14.5) is present and right."""
        at = self._mi
        if at < 0:
            return False
        mac = digest.stun_mac("sha1", key, self.data, at, at + 24 - HEADER_SIZE)
        return digest.equal_at(mac, 20, self.data, at + 4)

    def check_integrity_sha256(self, key):
        """True when MESSAGE-INTEGRITY-SHA256 (§14.6) is present and right;
        a truncated value is compared against the same leading bytes."""
        at = self._mi256
        if at < 0:
            return False
        size = _u16(self.data, at + 2)
        mac = digest.stun_mac("sha256", key, self.data, at, at + 4 + size - HEADER_SIZE)
        return digest.equal_at(mac, size, self.data, at + 4)

    def check_fingerprint(self):
        """True when FINGERPRINT (§14.7) is present and matches."""
        at = self._fp
        return at >= 0 and digest.fingerprint_matches(self.data, at)


def decode(data):
    """Parse one STUN message; raises StunError when it is malformed."""
    return Message().parse(data)


# Packed forms of the last few addresses written, shared by every Writer:
# answers go to the same few peers, and parsing text allocates.
_packed_ips = Recent(lambda ip, _unused: ip_to_bytes(ip))


class Writer:
    """Builds STUN messages into a caller-owned bytearray.

    w = Writer(bytearray(548)); w.start(BINDING_REQUEST, txid)
    w.add_bytes(USERNAME, b"a:b"); w.add_integrity(key); w.add_fingerprint()
    sock.sendto(w.view(), addr)
    """

    def __init__(self, buf):
        if not isinstance(buf, bytearray):
            raise TypeError("Writer needs a bytearray it can write into")
        self.buf = buf
        self.length = 0
        self._view = memoryview(buf)

    def start(self, msg_type, txid):
        if len(txid) != 12:
            raise ValueError("a transaction ID is 12 bytes")
        if len(self.buf) < HEADER_SIZE:
            raise StunError("buffer too small for a STUN header")
        struct.pack_into(">HHI", self.buf, 0, msg_type, 0, MAGIC_COOKIE)
        self.buf[8:20] = txid
        self.length = HEADER_SIZE
        return self

    def start_reply(self, msg_type, request):
        """Start an answer to the parsed `request`, same transaction ID."""
        self.start(msg_type, request.data[8:20])
        return self

    def view(self):
        """The finished message: a view of the buffer's first `length` bytes."""
        return self._view[: self.length]

    def _open(self, attr_type, value_len):
        """Reserve an attribute, zero its padding, return its value offset."""
        off = self.length
        end = off + 4 + ((value_len + 3) & ~3)
        if end > len(self.buf):
            raise StunError("message does not fit its %d-byte buffer" % len(self.buf))
        buf = self.buf
        struct.pack_into(">HH", buf, off, attr_type, value_len)
        for i in range(off + 4 + value_len, end):
            buf[i] = 0
        self.length = end
        struct.pack_into(">H", buf, 2, end - HEADER_SIZE)
        return off + 4

    def add_bytes(self, attr_type, value):
        if isinstance(value, str):
            value = value.encode()
        at = self._open(attr_type, len(value))
        self.buf[at : at + len(value)] = value

    def add_flag(self, attr_type):
        """A zero-length attribute such as USE-CANDIDATE or DONT-FRAGMENT."""
        self._open(attr_type, 0)

    def add_u32(self, attr_type, value):
        struct.pack_into(">I", self.buf, self._open(attr_type, 4), value)

    def add_u64(self, attr_type, value):
        at = self._open(attr_type, 8)
        struct.pack_into(">II", self.buf, at, value >> 32, value & 0xFFFFFFFF)

    def add_address(self, attr_type, ip, port, xor=False):
        packed = _packed_ips.get(ip)
        size = len(packed)
        at = self._open(attr_type, 4 + size)
        buf = self.buf
        buf[at] = 0
        buf[at + 1] = FAMILY_IPV4 if size == 4 else FAMILY_IPV6
        if xor:
            port ^= MAGIC_COOKIE >> 16
        struct.pack_into(">H", buf, at + 2, port)
        buf[at + 4 : at + 4 + size] = packed
        if xor:
            for i in range(size):
                buf[at + 4 + i] ^= buf[4 + i]  # cookie, then transaction ID

    def add_xor_address(self, attr_type, ip, port):
        self.add_address(attr_type, ip, port, True)

    def add_error_code(self, code, reason=""):
        if code < 300 or code > 699:
            raise ValueError("STUN error codes run from 300 to 699")
        reason = reason.encode()
        at = self._open(ERROR_CODE, 4 + len(reason))
        struct.pack_into(">HBB", self.buf, at, 0, code // 100, code % 100)
        self.buf[at + 4 : at + 4 + len(reason)] = reason

    def add_unknown_attributes(self, types):
        at = self._open(UNKNOWN_ATTRIBUTES, 2 * len(types))
        for i in range(len(types)):
            struct.pack_into(">H", self.buf, at + 2 * i, types[i])

    def _sign(self, attr_type, mac_len, algorithm, key):
        at = self._open(attr_type, mac_len)  # header length now covers it
        self.buf[at : at + mac_len] = digest.stun_mac(algorithm, key, self.buf, at - 4)

    def add_integrity(self, key):
        """MESSAGE-INTEGRITY over everything so far (RFC 8489 §14.5)."""
        self._sign(MESSAGE_INTEGRITY, 20, "sha1", key)

    def add_integrity_sha256(self, key):
        """MESSAGE-INTEGRITY-SHA256, full 32 bytes (RFC 8489 §14.6)."""
        self._sign(MESSAGE_INTEGRITY_SHA256, 32, "sha256", key)

    def add_fingerprint(self):
        """FINGERPRINT, CRC-32 of everything so far XOR 0x5354554e (§14.7)."""
        at = self._open(FINGERPRINT, 4)
        digest.fingerprint_into(self.buf, at - 4, self.buf, at)
