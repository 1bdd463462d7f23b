"""HMAC (RFC 2104) on the platform's hashlib, STUN key derivation and a
constant-time compare.

MicroPython has no `hmac` module, so HMAC is built from two hashlib passes.
On CPython the C-backed `hmac` is used instead, and keyed states are copied
rather than rebuilt, because an agent signs with the same few keys all day.
"""

import hashlib

try:
    import hmac as _hmac
except ImportError:
    _hmac = None

_BLOCK = 64  # SHA-1 and SHA-256 block size in bytes.

# The last two keys seen per algorithm (an agent alternates between its own
# and its peer's), and what each was prepared into: the (inner, outer) padded
# keys on MicroPython, a keyed hmac object on CPython.
_prepared = {"sha1": [], "sha256": []}  # type: dict
_CACHED_KEYS = 2


def _prepare(algorithm, key):
    cache = _prepared[algorithm]
    for cached_key, state in cache:
        if key == cached_key:
            return state
    if _hmac is not None:
        state = _hmac.new(key, None, algorithm)
    else:
        if len(key) > _BLOCK:
            raise ValueError("HMAC keys longer than 64 bytes are not used by STUN")
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        state = (ipad, opad)
    cache.insert(0, (bytes(key), state))
    del cache[_CACHED_KEYS:]
    return state


def _hmac_parts(algorithm, key, part1, part2, part3):
    """HMAC of part1 + part2 + part3 without joining them (no copies)."""
    state = _prepare(algorithm, key)
    if _hmac is not None:
        mac = state.copy()  # pyright: ignore[reportAttributeAccessIssue]
        mac.update(part1)
        mac.update(part2)
        mac.update(part3)
        return mac.digest()
    new_hash = getattr(hashlib, algorithm)
    inner = new_hash(state[0])
    inner.update(part1)
    inner.update(part2)
    inner.update(part3)
    outer = new_hash(state[1])
    outer.update(inner.digest())
    return outer.digest()


_EMPTY = memoryview(b"")


def hmac_sha1(key, part1, part2=_EMPTY, part3=_EMPTY):
    return _hmac_parts("sha1", key, part1, part2, part3)


def hmac_sha256(key, part1, part2=_EMPTY, part3=_EMPTY):
    return _hmac_parts("sha256", key, part1, part2, part3)


def short_term_key(password):
    """RFC 8489 §9.1.1: the key is the password itself (OpaqueString-prepared;
    ICE passwords are plain ASCII so preparation changes nothing)."""
    return password.encode() if isinstance(password, str) else bytes(password)


def long_term_key(username, realm, password):
    """RFC 8489 §9.2.2: MD5(username ":" realm ":" password)."""
    text = "%s:%s:%s" % (username, realm, password)
    return hashlib.md5(text.encode()).digest()


def _equal_loop(a, b):
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


# Compare two byte strings in time that depends only on their length.
equal = _equal_loop if _hmac is None else _hmac.compare_digest
