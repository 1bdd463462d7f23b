"""One-shot mDNS resolution of `.local` host names (RFC 6762), sans-IO.

Browsers hide host addresses in ICE candidates behind names like
`<uuid>.local`. To reach such a candidate, send `build_query` from any
ordinary UDP socket (source port not 5353, RFC 6762 §5.1) to the group and
port below, and feed each datagram that comes back to `parse_answer`.

Only the two calls a resolver needs are here: no cache, no probing, no
responder. Malformed datagrams raise `MdnsError` and nothing else.
"""

import struct

from ice.compat import const, ip_from_bytes

MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
MDNS_PORT = const(5353)

TYPE_A = const(1)
TYPE_AAAA = const(28)

_HEADER = const(12)
_CLASS_IN = const(1)
_QU = const(0x8000)  # RFC 6762 §5.4: top bit of QCLASS asks for a unicast reply
_CLASS_MASK = const(0x7FFF)  # RFC 6762 §10.2: top bit of rrclass is cache-flush
_FLAG_QR = const(0x8000)
_OPCODE_RCODE = const(0x780F)
_MAX_NAME = const(255)  # RFC 1035 §3.1, counting length octets and the root


class MdnsError(ValueError):
    """An invalid host name, or a datagram that breaks the DNS wire rules."""


def _u16(data, off):
    return (data[off] << 8) | data[off + 1]


def _encode_name(name, fold):
    """Wire form of a `.local` name (RFC 1035 §3.1); with `fold`, ASCII
    letters lowered for comparison (RFC 6762 §16: only those fold)."""
    if not isinstance(name, str):
        raise MdnsError("host name must be text, got %r" % (name,))
    try:
        raw = name.encode()
    except ValueError:  # lone surrogates on CPython
        raise MdnsError("host name %r is not valid Unicode" % (name,))
    if raw.endswith(b"."):
        raw = raw[:-1]
    labels = raw.split(b".")
    if len(labels) < 2 or labels[-1].lower() != b"local":
        raise MdnsError("%r is not a .local host name (RFC 6762 §3)" % name)
    out = bytearray()
    for label in labels:
        if not 0 < len(label) < 64:
            raise MdnsError("%r has a label of %d bytes; 1-63 allowed" % (name, len(label)))
        out.append(len(label))
        if fold:
            for b in label:
                out.append(b | 0x20 if 65 <= b <= 90 else b)
        else:
            out.extend(label)
    out.append(0)
    if len(out) > _MAX_NAME:
        raise MdnsError("%r is %d bytes on the wire; at most 255" % (name, len(out)))
    return out


def build_query(buf, name, qtype, query_id=0):
    """Write a one-question query for `name` into `buf`; return its length.

    QU is set (RFC 6762 §5.4). A query from a port other than 5353 is a
    one-shot query and is answered by unicast anyway (§5.1, §6.7), with the
    ID and question echoed back.
    """
    if qtype != TYPE_A and qtype != TYPE_AAAA:
        raise MdnsError("query type must be A (1) or AAAA (28), not %r" % (qtype,))
    if not 0 <= query_id <= 0xFFFF:
        raise MdnsError("query ID %r does not fit 16 bits" % (query_id,))
    wire = _encode_name(name, False)
    end = _HEADER + len(wire) + 4
    if len(buf) < end:
        raise MdnsError("a %d-byte query does not fit a %d-byte buffer" % (end, len(buf)))
    # RFC 1035 §4.1.1: flags zero (standard query); one question, no records.
    struct.pack_into(">6H", buf, 0, query_id, 0, 1, 0, 0, 0)
    buf[_HEADER : _HEADER + len(wire)] = wire
    struct.pack_into(">HH", buf, end - 4, qtype, _QU | _CLASS_IN)
    return end


def _skip_name(data, off, size):
    """Offset just past the name at `off`, without following pointers."""
    while True:
        if off >= size:
            raise MdnsError("name runs past the end of the message")
        n = data[off]
        if n & 0xC0 == 0xC0:
            if off + 2 > size:
                raise MdnsError("compression pointer cut short")
            return off + 2
        if n & 0xC0:
            raise MdnsError("label type 0x%02x is not defined" % (n & 0xC0))
        off += 1 + n
        if n == 0:
            return off


def _name_equals(data, off, size, want):
    """Whether the name at `off` is `want` (lowered wire form), ASCII letters
    folded. Follows compression pointers (RFC 1035 §4.1.4); each must land
    before the stretch of labels it ends, so a walk can never loop."""
    floor = off  # start of the stretch being read
    length = 0
    pos = 0  # where in `want` the next label should begin; -1 after a mismatch
    while True:
        if off >= size:
            raise MdnsError("name runs past the end of the message")
        n = data[off]
        if n & 0xC0 == 0xC0:
            if off + 2 > size:
                raise MdnsError("compression pointer cut short")
            target = ((n & 0x3F) << 8) | data[off + 1]
            if target >= floor:
                raise MdnsError("compression pointer at %d does not point back" % off)
            off = floor = target
            continue
        if n & 0xC0:
            raise MdnsError("label type 0x%02x is not defined" % (n & 0xC0))
        length += 1 + n
        if length > _MAX_NAME:
            raise MdnsError("name longer than 255 bytes")
        if off + 1 + n > size:
            raise MdnsError("label runs past the end of the message")
        if pos >= 0:
            if pos + 1 + n > len(want) or want[pos] != n:
                pos = -1
            else:
                for i in range(1, n + 1):
                    b = data[off + i]
                    if (b | 0x20 if 65 <= b <= 90 else b) != want[pos + i]:
                        pos = -1
                        break
                else:
                    pos += 1 + n
        if n == 0:
            return pos == len(want)
        off += 1 + n


def parse_answer(data, name):
    """The first A or AAAA address owned by `name` in a response, or None.

    Answer and additional records are both searched, since responders put
    address records in either (RFC 6762 §6.2, RFC 6763 §12). Queries and
    messages with a non-zero opcode or rcode are ignored (RFC 6762 §18.2,
    §18.3, §18.11), and so are records with a zero TTL. The walk stops at the
    first match; a malformed datagram raises MdnsError.
    """
    want = _encode_name(name, True)
    size = len(data)
    if size < _HEADER:
        raise MdnsError("%d bytes is shorter than a DNS header" % size)
    flags = _u16(data, 2)
    if not flags & _FLAG_QR or flags & _OPCODE_RCODE:
        return None
    off = _HEADER
    for _ in range(_u16(data, 4)):  # questions: echoed in one-shot replies (§6.7)
        off = _skip_name(data, off, size) + 4
        if off > size:
            raise MdnsError("question cut short")
    answers = _u16(data, 6)
    auth_end = answers + _u16(data, 8)
    for i in range(auth_end + _u16(data, 10)):
        owner = off
        off = _skip_name(data, off, size)
        if off + 10 > size:
            raise MdnsError("resource record header cut short")
        rtype = _u16(data, off)
        rclass = _u16(data, off + 2) & _CLASS_MASK
        live = data[off + 4] | data[off + 5] | data[off + 6] | data[off + 7]
        rdlen = _u16(data, off + 8)
        off += 10
        if off + rdlen > size:
            raise MdnsError("record data runs past the end of the message")
        if (rtype == TYPE_A or rtype == TYPE_AAAA) and rclass == _CLASS_IN:
            if rdlen != (4 if rtype == TYPE_A else 16):
                raise MdnsError("address record of type %d has %d bytes" % (rtype, rdlen))
            # Authority records are a prober's claims (§8.2); a zero TTL is a
            # goodbye (§10.1): neither gives an address to use.
            in_authority = answers <= i < auth_end
            if live and not in_authority and _name_equals(data, owner, size, want):
                return ip_from_bytes(bytes(data[off : off + rdlen]))
        off += rdlen
    return None
