"""Secrets: ICE credentials carry enough os.urandom entropy (RFC 8445 §5.3),
no repr()/str() or stats() shows a password, and integrity is compared in
constant time.

Portable: runs under pytest and under the MicroPython unix port
(host_tests/mp_run.py); the asyncio Connection part runs where ice.aio imports.
"""

from ice import compat, digest, stun, turn
from ice.agent import Agent
from scenarios import Session

TURN_PASSWORD = "TurnSecret-5f3a9c"


def _log2(n):
    bits = 0
    while (1 << (bits + 1)) <= n:
        bits += 1
    return bits  # floor(log2 n): a lower bound on the entropy per character


def test_credentials_have_rfc8445_entropy_from_urandom():
    """§5.3: ufrag >= 24 bits and password >= 128 bits of randomness."""
    calls = []
    real = compat.urandom

    def counting(n):
        calls.append(n)
        return real(n)

    compat.urandom = counting  # random_token looks it up at call time
    try:
        agent = Agent(True)
    finally:
        compat.urandom = real
    alphabet = len(compat.ICE_CHARS)
    assert alphabet == 64 and len(set(compat.ICE_CHARS)) == 64
    bits = _log2(alphabet)
    assert len(agent.local_ufrag) * bits >= 24, agent.local_ufrag
    assert len(agent.local_pwd) * bits >= 128, agent.local_pwd
    # One urandom byte per character of each, used 6 bits at a time.
    assert len(agent.local_ufrag) in calls and len(agent.local_pwd) in calls, calls
    for text in (agent.local_ufrag, agent.local_pwd):
        assert all(ch in compat.ICE_CHARS for ch in text)


def test_credentials_differ_across_agents_and_restarts():
    creds = []
    for i in range(40):  # one agent at a time: 40 of them overflow a 320K heap
        a = Agent(i % 2 == 0)
        creds.append((a.local_ufrag, a.local_pwd, a._tiebreaker))
    assert len(set(c[0] for c in creds)) == 40 and len(set(c[1] for c in creds)) == 40
    assert len(set(c[2] for c in creds)) == 40
    seen = set()
    for c in creds:
        seen.update(c[1])
    assert len(seen) >= 56, len(seen)  # 960 draws from 64 chars: all but a few appear
    old = (a.local_ufrag, a.local_pwd)
    a.restart()
    assert a.local_ufrag != old[0] and a.local_pwd != old[1]
    assert len(set(stun.new_txid() for _ in range(50))) == 50


def _assert_hidden(text, secrets, what):
    for secret in secrets:
        assert secret not in text, "%s shows a secret: %s" % (what, text)


def test_repr_str_and_stats_never_show_passwords():
    s = Session()
    a = s.a
    client = a.add_turn_server("203.0.113.9", 3478, "cam-user", TURN_PASSWORD, s.host_a.ip, 5000)
    s.sim.kick(a)
    assert s.connect()
    secrets = (a.local_pwd, s.b.local_pwd, TURN_PASSWORD)
    shown = [
        ("Agent", a), ("peer Agent", s.b), ("TurnClient", client), ("Session", s),
        ("selected pair", a.selected_pair), ("config", a.config),
    ]
    for name, obj in shown:
        _assert_hidden(repr(obj), secrets, "repr(%s)" % name)
        _assert_hidden(str(obj), secrets, "str(%s)" % name)
    for pair in a.pairs:
        _assert_hidden(repr(pair), secrets, "repr(Pair)")
    for cand in a.local_candidates + a.remote_candidates:
        _assert_hidden(repr(cand), secrets, "repr(Candidate)")
    _assert_hidden(str(a.stats()), secrets, "Agent.stats()")
    _assert_hidden(repr(a.counters) + repr(client.counters), secrets, "counters")
    client.error = None
    a.close()
    _assert_hidden(repr(client) + str(a.stats()), secrets, "after close")


def test_connection_repr_and_stats_never_show_passwords():
    try:
        from ice.aio import Connection
    except (ImportError, MemoryError):
        print("ice.aio not importable here: skipped")
        return
    conn = Connection(True, turn_server=("203.0.113.9", 3478), turn_username="cam-user",
                      turn_password=TURN_PASSWORD, interfaces=[("lo", "127.0.0.1")])
    conn.remote_username = "peer"
    conn.remote_password = "peerpasswordpeerpassword"
    secrets = (conn.local_password, TURN_PASSWORD, "peerpasswordpeerpassword")
    _assert_hidden(repr(conn), secrets, "repr(Connection)")
    _assert_hidden(str(conn), secrets, "str(Connection)")
    _assert_hidden(str(conn.stats()), secrets, "Connection.stats()")


def test_integrity_is_compared_in_constant_time():
    """Every integrity check goes through digest.equal_at: hmac.compare_digest
    on CPython; on MicroPython an XOR loop with no early exit (in viper code
    when the native emitter is there, which the unix port has)."""
    try:
        import hmac
    except ImportError:
        hmac = None
    if hmac is not None:
        assert digest.equal is hmac.compare_digest
    else:
        assert digest.equal is digest._equal_loop
        assert digest._native is not None  # the unix port can run viper
    loop = digest._equal_loop
    assert loop(b"a" * 20, b"a" * 20) and not loop(b"a" * 20, b"b" + b"a" * 19)
    assert not loop(b"a" * 20, b"a" * 19 + b"b") and not loop(b"a" * 20, b"a" * 19)
    data = b"xx" + b"a" * 20
    assert digest.equal_at(b"a" * 20, 20, data, 2)
    assert not digest.equal_at(b"b" + b"a" * 19, 20, data, 2)
    assert not digest.equal_at(b"a" * 19 + b"b", 20, data, 2)
    assert digest.equal_at(b"a" * 16 + b"zzzz", 16, data, 2)  # truncated MESSAGE-INTEGRITY-SHA256

    key = digest.short_term_key("abcdefghijklmnopqrstuv")
    w = stun.Writer(bytearray(128)).start(stun.BINDING_REQUEST, b"\x01" * 12)
    w.add_bytes(stun.USERNAME, "a:b")
    w.add_integrity(key)
    w.add_integrity_sha256(key)
    msg = stun.decode(bytes(w.view()))
    calls = []
    real = digest.equal_at

    def spy(mac, size, data, off):
        calls.append(size)
        return real(mac, size, data, off)

    digest.equal_at = spy  # stun calls digest.equal_at through the module
    try:
        assert msg.check_integrity(key)
        assert not msg.check_integrity(b"wrong")
        assert msg.check_integrity_sha256(key)
    finally:
        digest.equal_at = real
    assert calls == [20, 20, 32], calls
