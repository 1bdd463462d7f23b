"""Viewer grants (camlink.grants): the camera's gate and the viewer's end,
without a network. Runs under pytest and under the MicroPython unix port.
"""

from camlink import grants
from camlink.grants import Gate, GrantError, ViewerAuth
from helpers import raises

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1800000000


def clock():
    return NOW


def gate(**kw):
    return Gate(SECRET, "garage", clock=clock, **kw)


def opened(g, viewer, viewer_id="v1"):
    """hello -> challenge -> sealed ice: (auth of the camera, the ice message)."""
    challenge = g.challenge(viewer_id, viewer.hello())
    assert challenge["type"] == "challenge", challenge
    assert viewer.on_challenge(challenge)
    ice = viewer.seal({"type": "ice", "ufrag": "abcd", "pwd": "p" * 22})
    auth, denial = g.admit(viewer_id, ice)
    return auth, denial, ice


def test_issue_and_load_round_trip():
    text = grants.issue(SECRET, "garage", "alice", NOW + 60)
    claims, key = grants.load(text)
    assert claims == "v1|garage|alice|%d" % (NOW + 60)
    assert key == grants.grant_key(SECRET, claims) and len(key) == 32
    assert grants.parse_claims(claims) == ("garage", "alice", NOW + 60)
    for bad in ("v2|garage|alice|1", "v1|garage|alice", "v1|ga rage|alice|1", "v1|garage|alice|x", 7):
        assert raises(GrantError, grants.parse_claims, bad)
    assert raises(GrantError, grants.load, claims + "#zz")
    assert raises(GrantError, grants.load, claims + "#00")
    assert raises(GrantError, Gate, b"short", "garage")


def test_the_owners_viewer_is_admitted_and_both_ends_check_each_message():
    g = gate()
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 60))
    auth, denial, _ = opened(g, viewer)
    assert denial is None and auth is not None and g.counters["admitted"] == 1
    answer = auth.seal({"type": "ice", "ufrag": "cam1", "pwd": "q" * 22})
    assert viewer.auth.open(answer)
    cand = viewer.seal({"type": "candidate", "candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host"})
    assert auth.open(cand)
    assert not auth.open(cand)  # the same seq again: a replay
    tampered = viewer.seal({"type": "candidate", "candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host"})
    tampered["candidate"] = tampered["candidate"].replace("192.0.2.1", "203.0.113.66")
    assert auth.check(tampered) == "bad_mac"
    assert auth.check({"type": "candidate", "candidate": "x"}) == "unsigned"


def test_a_viewers_message_reflected_back_is_refused():
    g = gate()
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 60))
    auth, _, ice = opened(g, viewer)
    assert auth is not None
    reflected = viewer.seal({"type": "ice", "ufrag": "abcd", "pwd": "p" * 22})
    assert viewer.auth.check(reflected) == "bad_mac"  # signed "from the viewer", not the camera


def test_the_challenge_proves_the_camera_knows_the_secret():
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 60))
    impostor = Gate(b"another-secret-of-32-bytes-here!", "garage", clock=clock)
    assert not viewer.on_challenge(impostor.challenge("v1", viewer.hello()))
    assert viewer.auth is None


def test_expired_other_camera_anonymous_and_forged_grants_are_refused():
    g = gate()
    expired = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW))
    assert g.challenge("v1", expired.hello()) == {"type": "denied", "reason": "expired"}
    other = ViewerAuth(grants.issue(SECRET, "porch", "alice", NOW + 60))
    assert g.challenge("v1", other.hello()) == {"type": "denied", "reason": "other_camera"}
    assert g.admit("v1", {"type": "ice", "ufrag": "abcd", "pwd": "p" * 22})[1]["reason"] == "anonymous"
    # Claims copied from the owner's hello, with a key of the attacker's own.
    forged = ViewerAuth(grants.make_claims("garage", "alice", NOW + 60) + "#" + "ab" * 32)
    assert not forged.on_challenge(g.challenge("v2", forged.hello()))
    forged.auth = grants.PeerAuth(forged.key, g.challenge("v2", forged.hello())["nonce"], "v", "c")
    auth, denial = g.admit("v2", forged.seal({"type": "ice", "ufrag": "abcd", "pwd": "p" * 22}))
    assert auth is None and denial["reason"] == "bad_mac"
    assert g.counters["admitted"] == 0


def test_a_cookie_opens_one_session_only_for_its_viewer_and_not_after_30_s():
    global NOW
    g = gate()
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 600))
    auth, _, ice = opened(g, viewer)
    assert auth is not None
    assert g.admit("v1", ice)[1]["reason"] == "replayed"  # the whole opening message again
    assert g.admit("v9", ice)[1]["reason"] == "bad_mac"  # another viewer id: the cookie names v1
    late = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 600))
    assert late.on_challenge(g.challenge("v3", late.hello()))
    NOW += grants.COOKIE_S + 1
    try:
        denial = g.admit("v3", late.seal({"type": "ice", "ufrag": "abcd", "pwd": "p" * 22}))[1]
    finally:
        NOW -= grants.COOKIE_S + 1
    assert denial["reason"] == "stale"


def test_refusals_over_the_rate_get_no_answer_and_no_work():
    g = gate(refusals_per_s=3)
    expired = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW))
    answers = [g.challenge("v%d" % i, expired.hello()) for i in range(10)]
    assert [a is not None for a in answers].count(True) <= 4, answers
    assert g.counters["rate_limited"] >= 6 and g.counters["expired"] <= 4


def test_fields_that_are_not_text_cannot_be_signed():
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", NOW + 60))
    g = gate()
    opened(g, viewer)
    assert raises(ValueError, viewer.seal, {"type": "ice", "extra": [1, 2]})


def test_a_camera_whose_clock_was_never_set_admits_no_one():
    """A board counts from 2000 until NTP answers: no expiry can be checked."""
    g = Gate(SECRET, "garage", clock=lambda: 946684800 + 3600)
    viewer = ViewerAuth(grants.issue(SECRET, "garage", "alice", 946684800 + 7200))
    assert g.challenge("v1", viewer.hello()) == {"type": "denied", "reason": "clock_unset"}
