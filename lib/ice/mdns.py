"""One-shot mDNS resolution of `.local` host names (RFC 6762), sans-IO.

Browsers hide host addresses in ICE candidates behind names like
`<uuid>.local`. To reach such a candidate, send `build_query` from any
ordinary UDP socket (source port not 5353, RFC 6762 §5.1) to the group and
port below, and feed each datagram that comes back to `parse_answer`.

Only the two calls a resolver needs are here: no cache, no probing, no
responder. Malformed datagrams raise `MdnsError` and nothing else.
"""

from ice.compat import const
from ice.dns import (CLASS_IN, HEADER_SIZE, TYPE_A, TYPE_AAAA, DnsError, address_of, encode_name, name_equals,
                     record_at, skip_name, u16, write_query)

MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
MDNS_PORT = const(5353)

_QU = const(0x8000)  # RFC 6762 §5.4: top bit of QCLASS asks for a unicast reply
_CLASS_MASK = const(0x7FFF)  # RFC 6762 §10.2: top bit of rrclass is cache-flush
_FLAG_QR = const(0x8000)
_OPCODE_RCODE = const(0x780F)

MdnsError = DnsError


def _local_name(name, fold):
    """Wire form of a `.local` name; anything else is refused."""
    wire = encode_name(name, fold)
    labels = name.rstrip(".").split(".")
    if len(labels) < 2 or labels[-1].lower() != "local":
        raise DnsError("%r is not a .local host name (RFC 6762 §3)" % name)
    return wire


def build_query(buf, name, qtype, query_id=0):
    """Write a one-question query for `name` into `buf`; return its length.

    QU is set (RFC 6762 §5.4). A query from a port other than 5353 is a
    one-shot query and is answered by unicast anyway (§5.1, §6.7), with the
    ID and question echoed back.
    """
    # RFC 1035 §4.1.1: flags zero (standard query).
    return write_query(buf, _local_name(name, False), qtype, query_id, 0, _QU | CLASS_IN)


def parse_answer(data, name):
    """The first A or AAAA address owned by `name` in a response, or None.

    Answer and additional records are both searched, since responders put
    address records in either (RFC 6762 §6.2, RFC 6763 §12). Queries and
    messages with a non-zero opcode or rcode are ignored (RFC 6762 §18.2,
    §18.3, §18.11), and so are records with a zero TTL. The walk stops at the
    first match; a malformed datagram raises MdnsError.
    """
    want = _local_name(name, True)
    size = len(data)
    if size < HEADER_SIZE:
        raise DnsError("%d bytes is shorter than a DNS header" % size)
    flags = u16(data, 2)
    if not flags & _FLAG_QR or flags & _OPCODE_RCODE:
        return None
    off = HEADER_SIZE
    for _ in range(u16(data, 4)):  # questions: echoed in one-shot replies (§6.7)
        off = skip_name(data, off, size) + 4
        if off > size:
            raise DnsError("question cut short")
    answers = u16(data, 6)
    auth_end = answers + u16(data, 8)
    for i in range(auth_end + u16(data, 10)):
        rtype, rclass, live, rdata, rdlen = record_at(data, off, size)
        if (rtype == TYPE_A or rtype == TYPE_AAAA) and rclass & _CLASS_MASK == CLASS_IN:
            address = address_of(data, rtype, rdata, rdlen)
            # Authority records are a prober's claims (§8.2); a zero TTL is a
            # goodbye (§10.1): neither gives an address to use.
            in_authority = answers <= i < auth_end
            if live and not in_authority and name_equals(data, off, size, want):
                return address
        off = rdata + rdlen
    return None
