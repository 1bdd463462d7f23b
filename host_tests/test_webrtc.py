"""The camera's side of a browser's SDP offer/answer (firmware/cam/webrtc.py):
RFC 8829 (JSEP), RFC 8839 (ICE attributes), RFC 8841 (data channel m= line).

Portable: runs under pytest and the MicroPython unix port (mp_run.py). Both
runners put <repo>/firmware on sys.path (conftest.py, mp_run.py); the fallback
below covers running this file from the source tree by other means."""

import sys

try:
    from cam import webrtc
except ImportError:  # the repo's firmware/ folder, from host_tests/
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.insert(0, _here + "/../firmware")
    from cam import webrtc

from helpers import raises
from ice.sdp import Candidate, SdpError

# Offers captured from headless Chromium 156 (Debian's chromium, driven by
# Playwright in host_tests/cpython/browser.py): createDataChannel, createOffer,
# setLocalDescription. The first as sent right away (trickle: no candidates);
# the second is localDescription once gathering ended, with Chromium's
# mDNS-hidden host candidate.
CHROMIUM_OFFER = (
    "v=0\r\n"
    "o=- 4849123886325873725 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:LY+a\r\n"
    "a=ice-pwd:g9HL9hOGh1A6J0C98bjFjBKY\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 5A:6D:5C:50:8B:BD:63:E7:B9:F2:94:69:FF:A0:26:BB:"
    "76:A9:A2:43:6B:EF:26:99:C7:0D:A8:23:31:FC:EC:75\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n"
)

CHROMIUM_OFFER_GATHERED = (
    "v=0\r\n"
    "o=- 7651880373255297787 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=candidate:2236377726 1 udp 2113937151 bead3186-0166-4205-99a8-4d93da996f4d.local "
    "55891 typ host generation 0 network-cost 999\r\n"
    "a=ice-ufrag:XKZP\r\n"
    "a=ice-pwd:kgQCpVKpFaWCD9Fd6X3XMH/s\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 00:A5:AD:7E:14:84:17:72:C6:09:EF:FD:FE:3E:C4:59:"
    "4D:A3:09:17:16:87:E6:D4:DA:49:0A:43:56:9B:0E:BB\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n"
)

UFRAG = "Cam1"
PWD = "abcdefghijklmnopqrstuvwx"


def lines_of(sdp_text):
    assert sdp_text.endswith("\r\n")
    return sdp_text[:-2].split("\r\n")


def test_parse_chromium_offer_rfc8839_5_4():
    info = webrtc.parse_offer(CHROMIUM_OFFER)
    assert info["ufrag"] == "LY+a" and info["pwd"] == "g9HL9hOGh1A6J0C98bjFjBKY"
    assert info["ice_lite"] is False
    assert info["mid"] == "0"
    assert info["candidates"] == []
    assert info["trickle"] is True
    assert info["end_of_candidates"] is False
    assert (info["media"], info["protocol"], info["format"]) == ("application", "UDP/DTLS/SCTP", "webrtc-datachannel")
    assert info["sections"] == 1


def test_parse_chromium_offer_with_mdns_candidate():
    info = webrtc.parse_offer(CHROMIUM_OFFER_GATHERED)
    assert info["ufrag"] == "XKZP" and info["pwd"] == "kgQCpVKpFaWCD9Fd6X3XMH/s"
    assert len(info["candidates"]) == 1
    line = info["candidates"][0]
    assert line.startswith("candidate:2236377726 1 udp ")
    c = Candidate.from_sdp(line)
    assert c.host == "bead3186-0166-4205-99a8-4d93da996f4d.local" and c.port == 55891
    assert c.type == "host" and c.generation == 0
    assert ("network-cost", "999") in c.extensions


def test_parse_accepts_bare_lf_and_session_level_credentials_rfc8839_5_4():
    offer = "\n".join([
        "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
        "a=ice-lite", "a=ice-ufrag:sess", "a=ice-pwd:sessionpasswordsessionpw",
        "a=ice-options:ice2 trickle",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:data",
        "a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host",
        "a=candidate:2 1 udp 1694498815 203.0.113.9 6000 typ srflx raddr 192.0.2.1 rport 5000",
        "a=end-of-candidates",
    ]) + "\n"
    info = webrtc.parse_offer(offer)
    assert (info["ufrag"], info["pwd"]) == ("sess", "sessionpasswordsessionpw")
    assert info["ice_lite"] is True and info["trickle"] is True
    assert info["mid"] == "data"
    assert info["end_of_candidates"] is True
    assert [Candidate.from_sdp(x).type for x in info["candidates"]] == ["host", "srflx"]


def test_media_level_credentials_win_over_session_level():
    offer = ("v=0\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpasswordsessionpw\r\n"
             "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
             "a=ice-ufrag:medi\r\na=ice-pwd:mediapasswordmediapassw\r\n")
    info = webrtc.parse_offer(offer)
    assert (info["ufrag"], info["pwd"]) == ("medi", "mediapasswordmediapassw")
    assert info["trickle"] is False and info["mid"] is None


def test_only_the_first_m_section_counts():
    offer = CHROMIUM_OFFER + (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=ice-ufrag:othr\r\na=ice-pwd:otherpasswordotherpassw\r\na=mid:1\r\n"
        "a=candidate:9 1 udp 1 192.0.2.9 9 typ host\r\n")
    info = webrtc.parse_offer(offer)
    assert info["ufrag"] == "LY+a" and info["mid"] == "0" and info["candidates"] == []
    assert info["sections"] == 2
    assert raises(SdpError, webrtc.build_answer, info, UFRAG, PWD)


def test_malformed_candidates_are_skipped_rfc8839_5_1():
    offer = CHROMIUM_OFFER.replace(
        "a=mid:0\r\n",
        "a=mid:0\r\na=candidate:bad\r\na=candidate:1 1 udp 5 192.0.2.1 5000 typ host\r\n")
    assert webrtc.parse_offer(offer)["candidates"] == ["candidate:1 1 udp 5 192.0.2.1 5000 typ host"]


def test_parse_rejects_offers_without_ice():
    assert raises(SdpError, webrtc.parse_offer, "")
    assert raises(SdpError, webrtc.parse_offer, "v=0\r\ns=-\r\n")  # no m= section
    assert raises(SdpError, webrtc.parse_offer, CHROMIUM_OFFER.replace("a=ice-pwd:", "a=x-pwd:"))
    assert raises(SdpError, webrtc.parse_offer, CHROMIUM_OFFER.replace("a=ice-ufrag:LY+a", "a=ice-ufrag:L"))
    assert raises(SdpError, webrtc.parse_offer, CHROMIUM_OFFER.replace("a=ice-ufrag:LY+a", "a=ice-ufrag:LY-a"))
    assert raises(SdpError, webrtc.parse_offer, CHROMIUM_OFFER.replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=application"))
    assert raises(SdpError, webrtc.parse_offer, b"v=0\r\n")
    assert isinstance(SdpError("x"), ValueError)  # what the camera app catches


def test_answer_for_chromium_offer_rfc8841():
    info = webrtc.parse_offer(CHROMIUM_OFFER)
    answer = webrtc.build_answer(info, UFRAG, PWD)
    lines = lines_of(answer)
    assert lines[0] == "v=0" and lines[2] == "s=-" and lines[3] == "t=0 0"
    assert lines[1].startswith("o=- ") and lines[1].endswith(" 2 IN IP4 127.0.0.1")
    assert lines.index("a=group:BUNDLE 0") < lines.index("m=application 9 UDP/DTLS/SCTP webrtc-datachannel")
    media = lines[lines.index("m=application 9 UDP/DTLS/SCTP webrtc-datachannel"):]
    for line in ("c=IN IP4 0.0.0.0", "a=ice-ufrag:Cam1", "a=ice-pwd:" + PWD, "a=ice-options:trickle",
                 "a=setup:active", "a=mid:0", "a=sctp-port:5000"):
        assert line in media, line
    assert sum(1 for x in lines if x.startswith("m=")) == 1
    assert not [x for x in lines if x.startswith("a=candidate") or x == "a=end-of-candidates"]
    # Our answer reads back with the same ICE parameters.
    back = webrtc.parse_offer(answer)
    assert (back["ufrag"], back["pwd"], back["mid"], back["trickle"]) == (UFRAG, PWD, "0", True)


def test_answer_fingerprint_random_or_given_rfc8122_5():
    info = webrtc.parse_offer(CHROMIUM_OFFER)

    def fingerprint(answer):
        found = [x for x in lines_of(answer) if x.startswith("a=fingerprint:")]
        assert len(found) == 1
        assert found[0].startswith("a=fingerprint:sha-256 ")
        return found[0][len("a=fingerprint:sha-256 "):]

    one = fingerprint(webrtc.build_answer(info, UFRAG, PWD))
    two = fingerprint(webrtc.build_answer(info, UFRAG, PWD))
    assert one != two
    for value in (one, two):
        octets = value.split(":")
        assert len(octets) == 32
        assert all(len(o) == 2 and o == o.upper() and int(o, 16) >= 0 for o in octets)
    given = "00a5ad7e14841772c609effdfe3ec4594da309171687e6d4da490a43569b0ebb"
    expect = ":".join(given[i:i + 2] for i in range(0, 64, 2)).upper()
    assert fingerprint(webrtc.build_answer(info, UFRAG, PWD, given)) == expect
    assert fingerprint(webrtc.build_answer(info, UFRAG, PWD, expect.lower())) == expect
    assert raises(SdpError, webrtc.build_answer, info, UFRAG, PWD, "00:11")
    assert raises(SdpError, webrtc.build_answer, info, UFRAG, PWD, "zz" * 32)


def test_answer_follows_the_offer_mid():
    info = webrtc.parse_offer(CHROMIUM_OFFER.replace("BUNDLE 0", "BUNDLE dc").replace("a=mid:0", "a=mid:dc"))
    lines = lines_of(webrtc.build_answer(info, UFRAG, PWD))
    assert "a=group:BUNDLE dc" in lines and "a=mid:dc" in lines
    info["mid"] = None  # an offer without mid: no BUNDLE group to join
    lines = lines_of(webrtc.build_answer(info, UFRAG, PWD))
    assert not [x for x in lines if x.startswith("a=group") or x.startswith("a=mid")]


def test_answer_with_candidates_for_a_non_trickle_offerer_rfc8840_8():
    info = webrtc.parse_offer(CHROMIUM_OFFER)
    cands = ["candidate:1 1 udp 2130706431 192.0.2.7 5000 typ host",
             "a=candidate:2 1 udp 1694498815 203.0.113.7 6000 typ srflx raddr 192.0.2.7 rport 5000"]
    lines = lines_of(webrtc.build_answer(info, UFRAG, PWD, candidates=cands))
    found = [x for x in lines if x.startswith("a=candidate:")]
    assert found == ["a=" + cands[0], cands[1]]
    assert lines[-1] == "a=end-of-candidates"
    assert Candidate.from_sdp(found[1]).type == "srflx"
    assert raises(SdpError, webrtc.build_answer, info, UFRAG, PWD, None, ["a=mid:0"])


def test_answer_rejects_what_it_cannot_answer():
    info = webrtc.parse_offer(CHROMIUM_OFFER)
    assert raises(SdpError, webrtc.build_answer, info, "abc", PWD)  # RFC 8839 §5.4: ufrag 4+ chars
    assert raises(SdpError, webrtc.build_answer, info, UFRAG, "short")  # pwd 22+ chars
    assert raises(SdpError, webrtc.build_answer, info, "a b c d", PWD)
    audio = webrtc.parse_offer(CHROMIUM_OFFER.replace(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=audio 9 UDP/TLS/RTP/SAVPF 111"))
    assert raises(SdpError, webrtc.build_answer, audio, UFRAG, PWD)
    legacy = webrtc.parse_offer(CHROMIUM_OFFER.replace(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=application 9 DTLS/SCTP 5000"))
    assert raises(SdpError, webrtc.build_answer, legacy, UFRAG, PWD)
