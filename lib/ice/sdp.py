"""SDP lines for ICE: the "candidate" attribute and the other ICE attributes.

RFC 8839 §5 gives the grammar; RFC 8840 §8 adds "end-of-candidates";
RFC 6544 §4.5 adds "tcptype". Parsing checks every field; it forgives only
extra spaces, an optional `a=`/`candidate:` prefix and keyword case (ABNF
literals are case-insensitive, RFC 5234 §2.3). Every malformed input raises
`SdpError`. Formatting writes the canonical form: format -> parse is exact.
"""

from ice.candidate import TYPES, Candidate
from ice.compat import ICE_CHARS, ip_to_bytes


class SdpError(ValueError):
    """A malformed SDP line; the only exception this module raises on input."""


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DIGITS = "0123456789"
# RFC 8866 §9: token-char; VCHAR is %x21-7E (RFC 5234 appendix B.1).
_TOKEN_CHARS = _ALNUM + "!#$%&'*+-.^_`{|}~"
_VCHARS = "".join(chr(c) for c in range(0x21, 0x7F))

TCP_TYPES = ("active", "passive", "so")  # RFC 6544 §4.5
_KEYWORDS = ("typ", "raddr", "rport", "tcptype", "generation")
_FLAGS = ("ice-lite", "ice-mismatch", "end-of-candidates")  # RFC 8839 §5.3, RFC 8840 §8


def _only(text, allowed):
    for ch in text:
        if ch not in allowed:
            return False
    return True


def is_ice_chars(text):
    """True when `text` is all ice-chars (RFC 8839 §5.1)."""
    return _only(text, ICE_CHARS)


def _text(data):
    """The line as str: str as is, bytes decoded as ASCII."""
    if isinstance(data, str):
        return data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SdpError("SDP line must be str or bytes")
    raw = bytes(data)
    try:
        text = raw.decode("ascii")
    except ValueError:  # UnicodeError is a ValueError on both runtimes
        raise SdpError("SDP line is not ASCII")
    # MicroPython decodes UTF-8 whatever codec is named: a shorter str means multibyte chars.
    if len(text) != len(raw):
        raise SdpError("SDP line is not ASCII")
    return text


def _int(token, low, high, what):
    if not token or len(token) > 10 or not _only(token, _DIGITS):
        raise SdpError("bad %s: %r" % (what, token))
    value = int(token)
    if value < low or value > high:
        raise SdpError("%s out of range: %r" % (what, token))
    return value


def _check_address(text):
    """RFC 8839 §5.1 connection-address: IPv4, IPv6 (no zone) or an FQDN such as mDNS `x.local`."""
    if ":" in text or _only(text, _DIGITS + "."):
        if "%" in text:
            raise SdpError("zone index in address: %r" % text)
        try:
            ip_to_bytes(text)
        except ValueError:
            raise SdpError("bad IP address: %r" % text)
        return
    # RFC 1123 §2.1 host names: labels of letters, digits, inner hyphens.
    if len(text) > 253:
        raise SdpError("host name too long")
    for label in text.split("."):
        bad = not label or len(label) > 63 or label[0] == "-" or label[-1] == "-"
        if bad or not _only(label, _ALNUM + "-"):
            raise SdpError("bad host name: %r" % text)


def parse_candidate(line, cls=Candidate):
    """A Candidate (or `cls`) from `[a=][candidate:]foundation component transport ...`;
    SdpError if malformed (RFC 8839 §5.1)."""
    text = _text(line).strip()
    if text.startswith("a="):
        text = text[2:]
    if text[:10].lower() == "candidate:":
        text = text[10:]
    tokens = [t for t in text.split(" ") if t]
    if len(tokens) < 8:
        raise SdpError("candidate needs at least 8 fields, got %d" % len(tokens))
    foundation, transport, host = tokens[0], tokens[2].lower(), tokens[4]
    ctype = tokens[7].lower()
    if not 1 <= len(foundation) <= 32 or not _only(foundation, ICE_CHARS):
        raise SdpError("bad foundation: %r" % foundation)
    if not _only(transport, _TOKEN_CHARS):
        raise SdpError("bad transport: %r" % transport)
    _check_address(host)
    if tokens[6].lower() != "typ":
        raise SdpError("expected 'typ', got %r" % tokens[6])
    if ctype not in TYPES:
        raise SdpError("unknown candidate type: %r" % ctype)
    if len(tokens) % 2:
        raise SdpError("extension without a value: %r" % tokens[-1])
    # Name/value pairs follow `typ`: raddr/rport (§5.1), tcptype (RFC 6544),
    # generation (Chrome), anything else kept as an extension. Any order.
    seen = {"typ": ctype}
    extensions = []
    for i in range(8, len(tokens), 2):
        name, value = tokens[i], tokens[i + 1]
        key = name.lower()
        if key in _KEYWORDS:
            if key in seen:
                raise SdpError("repeated %r" % name)
            seen[key] = value
        elif _only(name, _TOKEN_CHARS) and _only(value, _VCHARS):
            extensions.append((name, value))
        else:
            raise SdpError("bad extension: %r %r" % (name, value))
    raddr, rport = seen.get("raddr"), seen.get("rport")
    if (raddr is None) != (rport is None):
        raise SdpError("raddr and rport must come together")
    if raddr is not None:
        _check_address(raddr)
        rport = _int(rport, 0, 65535, "rport")
    tcptype = seen.get("tcptype")
    if tcptype is not None and tcptype.lower() not in TCP_TYPES:
        raise SdpError("bad tcptype: %r" % tcptype)
    generation = seen.get("generation")
    if generation is not None:
        generation = _int(generation, 0, 0xFFFFFFFF, "generation")
    return cls(
        foundation=foundation,
        component=_int(tokens[1], 1, 256, "component"),
        transport=transport,
        priority=_int(tokens[3], 1, 0xFFFFFFFF, "priority"),
        host=host,
        port=_int(tokens[5], 0, 65535, "port"),
        type=ctype,
        related_address=raddr,
        related_port=rport,
        tcptype=tcptype,
        generation=generation,
        extensions=extensions,
    )


def _ice_string(value, low, high, name):
    # RFC 8839 §5.4: ufrag = 4*256ice-char, password = 22*256ice-char.
    if not isinstance(value, str) or not low <= len(value) <= high or not _only(value, ICE_CHARS):
        raise SdpError("bad %s: %r" % (name, value))
    return value


def _options(tags, name):
    # RFC 8839 §5.6: ice-option-tag *(SP ice-option-tag), ice-option-tag = 1*ice-char.
    if not tags:
        raise SdpError("empty %s" % name)
    for tag in tags:
        if not isinstance(tag, str) or not tag or not _only(tag, ICE_CHARS):
            raise SdpError("bad %s tag: %r" % (name, tag))
    return tags


def parse_attribute(line):
    """(name, value) for one `a=` line (RFC 8839 §5, RFC 8840 §8).

    ('ice-ufrag', str), ('ice-pwd', str), ('ice-options', [str, ...]),
    ('ice-pacing', int ms), ('ice-lite' | 'ice-mismatch' | 'end-of-candidates', None),
    ('candidate', Candidate); any other line gives ('other', line stripped).
    """
    text = _text(line).strip()
    body = text[2:] if text.startswith("a=") else text
    cut = body.find(":")
    name = (body if cut < 0 else body[:cut]).lower()
    value = None if cut < 0 else body[cut + 1 :]
    if name == "candidate":
        return name, parse_candidate(body)
    if name in _FLAGS:
        if value is not None:
            raise SdpError("%s takes no value" % name)
        return name, None
    if name == "ice-ufrag":
        return name, _ice_string(value, 4, 256, name)
    if name == "ice-pwd":
        return name, _ice_string(value, 22, 256, name)
    if name == "ice-options":
        return name, _options([t for t in (value or "").split(" ") if t], name)
    if name == "ice-pacing":  # RFC 8839 §5.5: 1*10DIGIT milliseconds
        return name, _int(value, 0, 9999999999, name)
    return "other", text


def format_attribute(name, value=None):
    """The `a=` line (no CRLF) for what `parse_attribute` returns; SdpError if invalid."""
    if name == "candidate":
        if not isinstance(value, Candidate):
            raise SdpError("candidate needs a Candidate, got %r" % (value,))
        return "a=" + value.to_sdp()
    if name in _FLAGS:
        return "a=" + name
    if name == "ice-ufrag":
        # RFC 8839 §5.4: accept up to 256 chars, but MUST NOT send more than 32.
        return "a=ice-ufrag:" + _ice_string(value, 4, 32, name)
    if name == "ice-pwd":
        return "a=ice-pwd:" + _ice_string(value, 22, 256, name)
    if name == "ice-options":
        if isinstance(value, str):
            value = value.split(" ")
        return "a=ice-options:" + " ".join(_options(list(value or ()), name))
    if name == "ice-pacing":
        if not isinstance(value, int) or not 0 <= value <= 9999999999:
            raise SdpError("bad ice-pacing: %r" % (value,))
        return "a=ice-pacing:%d" % value
    if name == "other" and isinstance(value, str):
        return value
    raise SdpError("unknown ICE attribute: %r" % (name,))
