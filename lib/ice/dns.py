"""DNS messages (RFC 1035), sans-IO: the wire rules shared with `ice.mdns`,
and the query and answer of a stub resolver that asks a recursive server
for a TURN or STUN server's address.

A stub query goes from a fresh UDP socket with a random ID (RFC 5452 §9.2)
to port 53 of a server; `parse_response` says whether a datagram is the
answer to it. Malformed datagrams raise `DnsError` and nothing else.
"""

import struct

from ice.compat import const, ip_from_bytes

DNS_PORT = const(53)
TYPE_A = const(1)
TYPE_AAAA = const(28)
RCODE_NXDOMAIN = const(3)

HEADER_SIZE = const(12)
CLASS_IN = const(1)
_FLAG_QR = const(0x8000)
_FLAG_RD = const(0x0100)  # RFC 1035 §4.1.1: recursion desired
_OPCODE = const(0x7800)
_RCODE = const(0x000F)
_MAX_NAME = const(255)  # RFC 1035 §3.1, counting length octets and the root


class DnsError(ValueError):
    """An invalid host name, or a datagram that breaks the DNS wire rules."""


def u16(data, off):
    return (data[off] << 8) | data[off + 1]


def encode_name(name, fold=False):
    """Wire form of a host name (RFC 1035 §3.1); with `fold`, ASCII letters
    lowered for comparison (only those fold: RFC 4343 §3, RFC 6762 §16)."""
    if not isinstance(name, str):
        raise DnsError("host name must be text, got %r" % (name,))
    try:
        raw = name.encode()
    except ValueError:  # lone surrogates on CPython
        raise DnsError("host name %r is not valid Unicode" % (name,))
    if raw.endswith(b"."):
        raw = raw[:-1]
    out = bytearray()
    for label in raw.split(b"."):
        if not 0 < len(label) < 64:
            raise DnsError("%r has a label of %d bytes; 1-63 allowed" % (name, len(label)))
        out.append(len(label))
        if fold:
            for b in label:
                out.append(b | 0x20 if 65 <= b <= 90 else b)
        else:
            out.extend(label)
    out.append(0)
    if len(out) > _MAX_NAME:
        raise DnsError("%r is %d bytes on the wire; at most 255" % (name, len(out)))
    return out


def write_query(buf, wire_name, qtype, query_id, flags, qclass):
    """One question for `wire_name` (encode_name's form) into `buf`; the
    message length."""
    if qtype != TYPE_A and qtype != TYPE_AAAA:
        raise DnsError("query type must be A (1) or AAAA (28), not %r" % (qtype,))
    if not 0 <= query_id <= 0xFFFF:
        raise DnsError("query ID %r does not fit 16 bits" % (query_id,))
    end = HEADER_SIZE + len(wire_name) + 4
    if len(buf) < end:
        raise DnsError("a %d-byte query does not fit a %d-byte buffer" % (end, len(buf)))
    struct.pack_into(">6H", buf, 0, query_id, flags, 1, 0, 0, 0)  # one question, no records
    buf[HEADER_SIZE : HEADER_SIZE + len(wire_name)] = wire_name
    struct.pack_into(">HH", buf, end - 4, qtype, qclass)
    return end


def skip_name(data, off, size):
    """Offset just past the name at `off`, without following pointers."""
    while True:
        if off >= size:
            raise DnsError("name runs past the end of the message")
        n = data[off]
        if n & 0xC0 == 0xC0:
            if off + 2 > size:
                raise DnsError("compression pointer cut short")
            return off + 2
        if n & 0xC0:
            raise DnsError("label type 0x%02x is not defined" % (n & 0xC0))
        off += 1 + n
        if n == 0:
            return off


def name_equals(data, off, size, want):
    """Whether the name at `off` is `want` (encode_name's folded form),
    ASCII letters folded. Follows compression pointers (RFC 1035 §4.1.4);
    each must land before the stretch of labels it ends, so a walk can
    never loop."""
    floor = off  # start of the stretch being read
    length = 0
    pos = 0  # where in `want` the next label should begin; -1 after a mismatch
    while True:
        if off >= size:
            raise DnsError("name runs past the end of the message")
        n = data[off]
        if n & 0xC0 == 0xC0:
            if off + 2 > size:
                raise DnsError("compression pointer cut short")
            target = ((n & 0x3F) << 8) | data[off + 1]
            if target >= floor:
                raise DnsError("compression pointer at %d does not point back" % off)
            off = floor = target
            continue
        if n & 0xC0:
            raise DnsError("label type 0x%02x is not defined" % (n & 0xC0))
        length += 1 + n
        if length > _MAX_NAME:
            raise DnsError("name longer than 255 bytes")
        if off + 1 + n > size:
            raise DnsError("label runs past the end of the message")
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


def record_at(data, off, size):
    """(type, class, TTL is non-zero, data offset, data length) of the
    resource record whose owner name starts at `off` (RFC 1035 §4.1.3)."""
    off = skip_name(data, off, size)
    if off + 10 > size:
        raise DnsError("resource record header cut short")
    rdlen = u16(data, off + 8)
    if off + 10 + rdlen > size:
        raise DnsError("record data runs past the end of the message")
    live = data[off + 4] | data[off + 5] | data[off + 6] | data[off + 7]
    return u16(data, off), u16(data, off + 2), live, off + 10, rdlen


def address_of(data, rtype, off, rdlen):
    """The text of an A or AAAA record's address."""
    if rdlen != (4 if rtype == TYPE_A else 16):
        raise DnsError("address record of type %d has %d bytes" % (rtype, rdlen))
    return ip_from_bytes(bytes(data[off : off + rdlen]))


# ---- the stub resolver's query (RFC 1035 §7) ---------------------------------------


def build_query(buf, name, qtype, query_id):
    """A recursive query (RD set) for `name` into `buf`; its length."""
    return write_query(buf, encode_name(name), qtype, query_id, _FLAG_RD, CLASS_IN)


def parse_response(data, name, qtype, query_id):
    """What a datagram says about our query: None when it is not the answer
    to it (a query, another ID or question: RFC 5452 §9.1 checks both), else
    (rcode, address text or None). The first record of the asked type in
    the answer section is taken: a recursive server puts there only the
    chain for the question (CNAMEs, then addresses of the last name)."""
    size = len(data)
    if size < HEADER_SIZE:
        raise DnsError("%d bytes is shorter than a DNS header" % size)
    flags = u16(data, 2)
    if u16(data, 0) != query_id or not flags & _FLAG_QR or flags & _OPCODE or u16(data, 4) != 1:
        return None
    if not name_equals(data, HEADER_SIZE, size, encode_name(name, True)):
        return None
    off = skip_name(data, HEADER_SIZE, size) + 4
    if off > size or u16(data, off - 4) != qtype or u16(data, off - 2) != CLASS_IN:
        return None
    rcode = flags & _RCODE
    for _ in range(u16(data, 6)):
        rtype, rclass, _, rdata, rdlen = record_at(data, off, size)
        if rtype == qtype and rclass == CLASS_IN:
            return rcode, address_of(data, rtype, rdata, rdlen)
        off = rdata + rdlen
    return rcode, None
