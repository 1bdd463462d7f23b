"""What the camera needs to answer a browser's WebRTC offer (RFC 8829 JSEP,
RFC 8839 ICE in SDP, RFC 8841 data channels in SDP).

A browser viewer sends a full SDP offer (`{"type": "sdp", "kind": "offer"}`,
firmware/PROTOCOL.md). `parse_offer` takes out what ICE needs: the
credentials, ICE-lite, the first m= section's mid, its candidates and whether
trickle is offered. `build_answer` writes the answer for a data-channel-only
offer: one `m=application ... webrtc-datachannel` section with our ICE
credentials, `a=ice-options:trickle` (candidates follow as `candidate`
messages) and a BUNDLE group naming the offer's mid.

For DTLS (webrtc.dtls, RFC 8842) the offer gives the browser's certificate
fingerprint and its setup role, and the answer carries the camera's
fingerprint with `a=setup:active`: the camera is the DTLS client. The
answer also gives `a=max-message-size` (RFC 8841 §6), what the camera
takes in one message. Without a certificate (tests of ICE alone) the
fingerprint is 32 random bytes and no data channel can open.

One source for MicroPython and CPython: no typing, re or dataclasses.
"""

import struct

from ice.compat import urandom
from ice.sdp import SdpError, format_attribute, parse_attribute

_ICE_NAMES = ("ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "candidate", "end-of-candidates")
_DTLS_NAMES = ("fingerprint", "setup", "max-message-size", "sctp-port")
_HEX = "0123456789abcdefABCDEF"
_PROTOCOLS = ("UDP/DTLS/SCTP", "TCP/DTLS/SCTP")  # RFC 8841 §4.1


def _lines(sdp_text):
    if not isinstance(sdp_text, str):
        raise SdpError("SDP must be str")
    for line in sdp_text.split("\n"):
        line = line.strip()
        if line:
            yield line


def _attr_name(line):
    """`ice-ufrag` of `a=ice-ufrag:abcd`, `ice-lite` of `a=ice-lite`."""
    cut = line.find(":")
    return (line[2:] if cut < 0 else line[2:cut]).lower()


def parse_offer(sdp_text):
    """The ICE side of an SDP offer, as a dict:

    ufrag, pwd        ICE credentials (the first m= section's, else the session's)
    ice_lite          True when the offerer is an ICE-lite agent (session level)
    mid               the first m= section's a=mid, or None
    candidates        its `candidate:...` lines, in order (malformed ones skipped)
    trickle           True when a=ice-options lists "trickle" (RFC 8840)
    end_of_candidates True when the section says a=end-of-candidates
    media, protocol, format  of the first m= line ("application", "UDP/DTLS/SCTP",
                      "webrtc-datachannel")
    sections          how many m= sections the offer has
    fingerprint       (hash name, "AA:BB:..") of the first a=fingerprint, or None
    setup             the a=setup role ("actpass", "passive", "active"), or None
    max_message_size  a=max-message-size, else 65536 (RFC 8841 §6.1)

    Only the first m= section counts: browsers BUNDLE everything onto it.
    Raises SdpError (a ValueError) when there is no m= section, no
    credentials, or an ICE attribute is malformed.
    """
    info = {"ufrag": None, "pwd": None, "ice_lite": False, "mid": None, "candidates": [],
            "trickle": False, "end_of_candidates": False, "media": None, "protocol": None,
            "format": None, "sections": 0, "fingerprint": None, "setup": None, "max_message_size": 65536}
    session = {}  # session-level ufrag / pwd, used when the section has none
    section = 0
    for line in _lines(sdp_text):
        if line.startswith("m="):
            section += 1
            if section == 1:
                fields = line[2:].split()
                if len(fields) < 4:
                    raise SdpError("bad m= line: %r" % line)
                info["media"], info["protocol"], info["format"] = fields[0], fields[2], fields[3]
            continue
        if section > 1 or not line.startswith("a="):
            continue
        name = _attr_name(line)
        if name == "mid" and section == 1:
            info["mid"] = line[6:]
            continue
        if name in _DTLS_NAMES:
            _dtls_attribute(info, name, line)
            continue
        if name not in _ICE_NAMES:
            continue
        if name == "candidate":
            if section == 1:
                try:
                    parse_attribute(line)
                except SdpError:
                    continue  # RFC 8839 §5.1: ignore what cannot be used
                info["candidates"].append(line[2:])
            continue
        name, value = parse_attribute(line)
        if name in ("ice-ufrag", "ice-pwd"):
            key = "ufrag" if name == "ice-ufrag" else "pwd"
            if section == 1:
                info[key] = value
            else:
                session[key] = value
        elif name == "ice-options":
            if isinstance(value, list) and "trickle" in value:
                info["trickle"] = True
        elif name == "ice-lite":
            info["ice_lite"] = True
        elif name == "end-of-candidates":
            info["end_of_candidates"] = True
    info["sections"] = section
    if not section:
        raise SdpError("offer has no m= section")
    for key in ("ufrag", "pwd"):
        if info[key] is None:
            info[key] = session.get(key)
        if info[key] is None:
            raise SdpError("offer has no ice-%s" % key)
    return info


def _dtls_attribute(info, name, line):
    value = line[line.find(":") + 1 :].strip()
    if name == "fingerprint":
        parts = value.split()
        if len(parts) != 2:
            raise SdpError("bad a=fingerprint: %r" % line)
        if info["fingerprint"] is None:
            info["fingerprint"] = (parts[0].lower(), parts[1])
    elif name == "setup":
        info["setup"] = value.lower()
    elif name == "max-message-size":
        try:
            size = int(value)
        except ValueError:
            raise SdpError("bad a=max-message-size: %r" % line)
        info["max_message_size"] = size if size > 0 else 1 << 30  # 0: any size (§6.1)


def _fingerprint(fingerprint_hex):
    """`AA:BB:...` (RFC 8122 §5) of 32 bytes: the given hex (colons optional) or random."""
    if fingerprint_hex is None:
        return ":".join("%02X" % b for b in urandom(32))
    digits = "".join(fingerprint_hex.split(":"))
    if len(digits) != 64:
        raise SdpError("a sha-256 fingerprint is 32 bytes")
    for ch in digits:
        if ch not in _HEX:
            raise SdpError("bad fingerprint: %r" % fingerprint_hex)
    digits = digits.upper()
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def build_answer(offer_info, ufrag, pwd, fingerprint_hex=None, candidates=None, max_message_size=None):
    """The SDP answer (CRLF lines) to a data-channel-only offer that
    `parse_offer` read: our ICE credentials, trickle, `a=setup:active`,
    SCTP port 5000, a sha-256 fingerprint (`fingerprint_hex`, else 32
    random bytes: no DTLS, see the module docstring) and
    `a=max-message-size` when given.

    `candidates` (`candidate:...` lines) go into the answer, followed by
    `a=end-of-candidates`, for an offerer that does not trickle; by default
    there are none and candidates follow as `candidate` messages.
    Raises SdpError for an offer with media other than one data channel
    section, or malformed credentials.
    """
    if offer_info.get("sections") != 1 or offer_info.get("media") != "application" or \
            offer_info.get("protocol") not in _PROTOCOLS or offer_info.get("format") != "webrtc-datachannel":
        raise SdpError("only a data-channel-only offer (one m=application section) can be answered")
    if offer_info.get("setup") == "active":
        raise SdpError("the offer wants to be the DTLS client (a=setup:active): the camera is always the client")
    mid = offer_info.get("mid")
    session_id = (struct.unpack(">I", urandom(4))[0] >> 1) + 1
    out = ["v=0", "o=- %d 2 IN IP4 127.0.0.1" % session_id, "s=-", "t=0 0"]
    if mid is not None:
        out.append("a=group:BUNDLE " + mid)
    out.append("m=application 9 %s webrtc-datachannel" % offer_info["protocol"])
    out.append("c=IN IP4 0.0.0.0")
    out.append(format_attribute("ice-ufrag", ufrag))
    out.append(format_attribute("ice-pwd", pwd))
    out.append(format_attribute("ice-options", ["trickle"]))
    out.append("a=fingerprint:sha-256 " + _fingerprint(fingerprint_hex))
    out.append("a=setup:active")
    if mid is not None:
        out.append("a=mid:" + mid)
    out.append("a=sctp-port:5000")
    if max_message_size is not None:
        out.append("a=max-message-size:%d" % max_message_size)
    if candidates is not None:
        for line in candidates:
            name, cand = parse_attribute(line)
            if name != "candidate":
                raise SdpError("not a candidate line: %r" % line)
            out.append(format_attribute("candidate", cand))
        out.append(format_attribute("end-of-candidates"))
    return "\r\n".join(out) + "\r\n"
