"""Viewer grants: the camera itself decides who watches (firmware/PROTOCOL.md,
"Viewer authorization"), so a curious or compromised signaling server cannot
let anyone in nor swap what the two ends tell each other.

The owner provisions a per-camera secret S. A grant names the camera, the
viewer and an expiry; its key is K = HMAC-SHA256(S, "grant|" + claims). The
viewer is given both (`issue`); only the claims ever cross the network.

    viewer -> camera   hello      {grant: claims, nonce: Nv}
    camera -> viewer   challenge  {nonce: Nc, proof: MAC_K("camera", Nv, Nc)}
    viewer -> camera   ice        {..., grant, nv, nonce: Nc, seq: 1, mac}
    then every message either way carries seq (rising) and mac.

Nc is a stateless cookie (a time and a MAC under a key made at boot), so a
flood of hellos holds no table; each cookie opens one session. The MAC
covers a direction tag, Nc, and every field but to/from/mac, so a message
cannot be changed, replayed into another session, or reflected back.
Runs on MicroPython and CPython (hashlib only).
"""

import binascii

from ice.compat import ticks_diff, ticks_ms, unix_time, urandom
from ice.digest import equal, hmac_sha256

VERSION = "v1"
COOKIE_S = 30  # a challenge must be answered within this long
# A clock before this (2025-01-01) was never set: a board counts from 2000
# until NTP answers. Expiry cannot be checked then, so no grant passes.
CLOCK_SET_AFTER = 1735689600
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@"
_MAX_NAME = 64
_NONCE_HEX = 32  # 16 random bytes
_USED_COOKIES = 8  # the last cookies that opened a session, refused again


class GrantError(ValueError):
    """A grant that cannot be used, with the reason."""


def _check_name(name, what):
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
        raise GrantError("%s must be 1-%d characters" % (what, _MAX_NAME))
    for ch in name:
        if ch not in _NAME_CHARS:
            raise GrantError("%s %r may hold only letters, digits and -_.@" % (what, name))


def make_claims(camera, viewer, expires):
    _check_name(camera, "camera")
    _check_name(viewer, "viewer")
    return "%s|%s|%s|%d" % (VERSION, camera, viewer, int(expires))


def parse_claims(claims):
    """(camera, viewer, expires) of a claims string; GrantError if malformed."""
    if not isinstance(claims, str) or len(claims) > 3 * _MAX_NAME:
        raise GrantError("malformed grant")
    parts = claims.split("|")
    if len(parts) != 4 or parts[0] != VERSION or not parts[3].isdigit():
        raise GrantError("malformed grant")
    _check_name(parts[1], "camera")
    _check_name(parts[2], "viewer")
    return parts[1], parts[2], int(parts[3])


def grant_key(secret, claims):
    return hmac_sha256(secret, ("grant|" + claims).encode())


def issue(secret, camera, viewer, expires):
    """The grant text an owner hands a viewer: claims and key, "#"-joined."""
    claims = make_claims(camera, viewer, expires)
    return claims + "#" + binascii.hexlify(grant_key(secret, claims)).decode()


def load(text):
    """(claims, key) of a grant text from `issue`."""
    claims, _, key_hex = text.strip().partition("#")
    parse_claims(claims)
    try:
        key = binascii.unhexlify(key_hex)
    except ValueError:
        raise GrantError("the grant's key is not hex")
    if len(key) != 32:
        raise GrantError("the grant's key is not 32 bytes")
    return claims, key


def new_nonce():
    return binascii.hexlify(urandom(_NONCE_HEX // 2)).decode()


def _mac_hex(key, *parts):
    return binascii.hexlify(hmac_sha256(key, "|".join(parts).encode())).decode()


def _canonical(direction, nonce, msg):
    """The signed form of a message: every field but to/from/mac, by name,
    each value length-prefixed (SDP holds any character). None when a value
    is not text or a number (protocol messages have no other)."""
    out = ["icecam1", direction, nonce]
    for name in sorted(msg):
        if name in ("to", "from", "mac"):
            continue
        value = msg[name]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        value = str(value)
        out.append("%s=%d:%s" % (name, len(value), value))
    return "\n".join(out).encode()


def _is_nonce(value):
    if not isinstance(value, str) or len(value) != _NONCE_HEX:
        return False
    for ch in value:
        if ch not in "0123456789abcdef":
            return False
    return True


class PeerAuth:
    """One authorized session's message protection, either end: `seal`
    what goes out, `open` what comes in (False: drop it)."""

    def __init__(self, key, nonce, sending, receiving):
        self.key = key
        self.nonce = nonce  # the camera's cookie: names this session
        self._sending = sending  # "c" or "v": our direction tag
        self._receiving = receiving
        self.sent = 0  # seq of the last message sealed
        self.received = 0  # seq of the last message accepted

    def seal(self, msg):
        self.sent += 1
        msg["seq"] = self.sent
        signed = _canonical(self._sending, self.nonce, msg)
        if signed is None:
            raise ValueError("only text and number fields can be signed")
        msg["mac"] = binascii.hexlify(hmac_sha256(self.key, signed)).decode()
        return msg

    def check(self, msg):
        """Reason text when `msg` is not an intact next message, else None."""
        seq = msg.get("seq")
        mac = msg.get("mac")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(mac, str):
            return "unsigned"
        signed = _canonical(self._receiving, self.nonce, msg)
        if signed is None:
            return "malformed"
        if not equal(binascii.hexlify(hmac_sha256(self.key, signed)), mac.encode()):
            return "bad_mac"
        if seq <= self.received:
            return "replayed"
        self.received = seq
        return None

    def open(self, msg):
        return self.check(msg) is None


class ViewerAuth:
    """The viewer's end: `hello()` opens, `on_challenge(msg)` checks that
    the camera holds the secret; then `auth` (a PeerAuth) seals and opens,
    the first sealed message carrying the grant."""

    def __init__(self, grant_text):
        self.claims, self.key = load(grant_text)
        self.camera = parse_claims(self.claims)[0]
        self.nonce = None
        self.auth = None

    def hello(self):
        self.nonce = new_nonce()
        self.auth = None
        return {"type": "hello", "grant": self.claims, "nonce": self.nonce}

    def on_challenge(self, msg):
        """True when the challenge proves the camera knows the secret."""
        cookie, proof = msg.get("nonce"), msg.get("proof")
        if self.nonce is None or not isinstance(cookie, str) or not isinstance(proof, str):
            return False
        if not equal(_mac_hex(self.key, "camera", self.nonce, cookie).encode(), proof.encode()):
            return False
        self.auth = PeerAuth(self.key, cookie, "v", "c")
        return True

    def seal(self, msg):
        if self.auth.sent == 0:  # the opening message names the grant
            msg["grant"] = self.claims
            msg["nv"] = self.nonce
            msg["nonce"] = self.auth.nonce
        return self.auth.seal(msg)


class Gate:
    """The camera's end: answers hellos with challenges and admits a viewer
    whose first sealed message checks out. `counters` holds what was
    refused and why. Refusals beyond `refusals_per_s` (a token bucket of a
    second's worth) are dropped without an answer and without the work."""

    def __init__(self, secret, camera, refusals_per_s=10, clock=unix_time):
        if isinstance(secret, str):
            secret = binascii.unhexlify(secret)
        if len(secret) < 16:
            raise GrantError("the camera secret must be at least 16 bytes (tools/grant.py provision)")
        _check_name(camera, "camera")
        self._secret = secret
        self.camera = camera
        self._clock = clock
        self._cookie_key = urandom(32)  # cookies die with the boot
        self._used = []  # cookies that opened a session lately
        self._rate = refusals_per_s
        self._tokens = refusals_per_s
        self._refilled = ticks_ms()
        self.counters = {"challenges": 0, "admitted": 0, "anonymous": 0, "malformed": 0, "expired": 0,
                         "other_camera": 0, "stale": 0, "unsigned": 0, "bad_mac": 0, "replayed": 0, "clock_unset": 0,
                         "rate_limited": 0}

    def _afford(self):
        """One unit of work for a viewer not admitted yet, if the bucket allows."""
        now = ticks_ms()
        self._tokens = min(self._rate, self._tokens + ticks_diff(now, self._refilled) * self._rate // 1000)
        self._refilled = now
        if self._tokens <= 0:
            self.counters["rate_limited"] += 1
            return False
        self._tokens -= 1
        return True

    def refuse(self, reason, charged=False):
        """Count a refusal; the denial for the viewer, or None when over the
        rate (`charged`: its unit of work was already taken)."""
        self.counters[reason] += 1
        return {"type": "denied", "reason": reason} if charged or self._afford() else None

    def _claims(self, claims):
        """The grant's key, or a refusal reason."""
        try:
            camera, _, expires = parse_claims(claims)
        except GrantError:
            return None, "malformed"
        if camera != self.camera:
            return None, "other_camera"
        now = self._clock()
        if now < CLOCK_SET_AFTER:
            return None, "clock_unset"
        if expires <= now:
            return None, "expired"
        return grant_key(self._secret, claims), None

    def _cookie(self, viewer_id, claims, nv, issued):
        return "%d.%s" % (issued, _mac_hex(self._cookie_key, "cookie", str(viewer_id), claims, nv, str(issued))[:24])

    def challenge(self, viewer_id, msg):
        """The answer to a hello: a challenge, or a denial with the reason;
        None when hellos come faster than the rate."""
        if not self._afford():
            return None
        claims, nv = msg.get("grant"), msg.get("nonce")
        if not _is_nonce(nv):
            return self.refuse("malformed", True)
        key, why = self._claims(claims)
        if key is None:
            return self.refuse(why, True)
        cookie = self._cookie(viewer_id, claims, nv, self._clock())
        self.counters["challenges"] += 1
        return {"type": "challenge", "nonce": cookie, "proof": _mac_hex(key, "camera", nv, cookie)}

    def admit(self, viewer_id, msg):
        """(PeerAuth, None) for a sealed opening message that checks out,
        else (None, the denial, or None over the rate)."""
        if not self._afford():
            return None, None
        claims, nv, cookie = msg.get("grant"), msg.get("nv"), msg.get("nonce")
        if claims is None and nv is None:
            return None, self.refuse("anonymous", True)
        if not _is_nonce(nv) or not isinstance(cookie, str) or not isinstance(claims, str):
            return None, self.refuse("malformed", True)
        issued, _, _ = cookie.partition(".")
        if not issued.isdigit() or not equal(self._cookie(viewer_id, claims, nv, int(issued)).encode(),
                                             cookie.encode()):
            return None, self.refuse("bad_mac", True)
        if not 0 <= self._clock() - int(issued) <= COOKIE_S:
            return None, self.refuse("stale", True)
        if cookie in self._used:
            return None, self.refuse("replayed", True)
        key, why = self._claims(claims)
        if key is None:
            return None, self.refuse(why, True)
        auth = PeerAuth(key, cookie, "c", "v")
        why = auth.check(msg)
        if why is not None:
            return None, self.refuse("bad_mac" if why != "replayed" else why, True)
        self._used.append(cookie)
        del self._used[:-_USED_COOKIES]
        self.counters["admitted"] += 1
        return auth, None
