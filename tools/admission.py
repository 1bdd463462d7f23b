"""What the signaling server checks before it lets a client into a room,
and the short-lived TURN credentials it hands out (firmware/PROTOCOL.md,
"Admission"). Host side only (CPython).

Room credential: "<room>|<role>|<expires>|<mac>", mac the first 32 hex
digits of HMAC-SHA256(server secret, "room|<room>|<role>|<expires>"). The
operator issues them (tools/grant.py room); a camera's is good for its
room as "camera", a viewer's as "viewer".

TURN credentials in coturn's shared-secret mode ("TURN REST API",
draft-uberti-behave-turn-rest-00 §2.2): username "<expires>:<name>",
password base64(HMAC-SHA1(TURN secret, username)); coturn
(`use-auth-secret`, `static-auth-secret`) refuses them once expired.
"""

import base64
import hashlib
import hmac
import time


def room_mac(secret, room, role, expires):
    text = "room|%s|%s|%d" % (room, role, expires)
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:32]


def issue_room_credential(secret, room, role, expires):
    if role not in ("camera", "viewer"):
        raise ValueError("role must be camera or viewer")
    if "|" in room:
        raise ValueError("a room name cannot hold |")
    return "%s|%s|%d|%s" % (room, role, int(expires), room_mac(secret, room, role, int(expires)))


def check_room_credential(secret, credential, room, role, now=None):
    """None when `credential` admits `role` to `room` now, else the reason."""
    if not isinstance(credential, str):
        return "a room credential is required"
    parts = credential.split("|")
    if len(parts) != 4 or not parts[2].isdigit():
        return "malformed room credential"
    c_room, c_role, expires, mac = parts
    if not hmac.compare_digest(room_mac(secret, c_room, c_role, int(expires)), mac):
        return "room credential not valid"
    if c_room != room or c_role != role:
        return "room credential is for another room or role"
    if int(expires) <= (time.time() if now is None else now):
        return "room credential expired"
    return None


def turn_credentials(secret, name, ttl_s, now=None):
    """(username, password) valid for `ttl_s` seconds."""
    username = "%d:%s" % (int(time.time() if now is None else now) + ttl_s, name)
    password = base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest()).decode()
    return username, password


class JoinLimiter:
    """Joins per client address: a token bucket of `burst` joins refilled at
    `per_s`, for up to `capacity` addresses (the least recently seen one
    is forgotten when full)."""

    def __init__(self, per_s=1.0, burst=10, capacity=4096, clock=time.monotonic):
        self.per_s = per_s
        self.burst = burst
        self.capacity = capacity
        self._clock = clock
        self._buckets = {}  # address -> [tokens, when], oldest first
        self.refused = 0

    def allow(self, address):
        now = self._clock()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = [self.burst, now]
            if len(self._buckets) >= self.capacity:
                del self._buckets[next(iter(self._buckets))]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.per_s)
        allowed = tokens >= 1
        self._buckets[address] = [tokens - 1 if allowed else tokens, now]
        if not allowed:
            self.refused += 1
        return allowed
