"""Floods in the network simulator: forged and malformed STUN at every
candidate port, remote-candidate and peer-reflexive floods against the table
caps, and the error-response budget that keeps the agent from amplifying.

Portable: runs under pytest and under the MicroPython unix port
(host_tests/mp_run.py). Each test prints how many packets it sprayed.
"""

import gc

from ice import stun, turn
from ice.agent import Agent, Config
from ice.sdp import Candidate
from netsim import Rng
from scenarios import STUN_IP, Session


def no_bugs(*agents):
    for agent in agents:
        assert agent.counters["internal_errors"] == 0, agent.counters


def within_caps(agent):
    """No list grew past its Config cap (RFC 8445 §6.1.2.5 pruning, issue 8)."""
    cfg = agent.config
    assert len(agent.local_candidates) <= cfg.max_local
    assert len(agent.remote_candidates) <= cfg.max_remote, len(agent.remote_candidates)
    assert len(agent.pairs) <= cfg.max_pairs, len(agent.pairs)
    assert len(agent._transactions.slots) == cfg.max_transactions
    assert len(agent._tx_writers) == cfg.transmit_slots
    assert agent._tx_count <= cfg.transmit_slots
    assert len(agent._events) <= cfg.max_events
    assert len(agent.checklist.triggered) <= cfg.max_pairs


def txid(rng):
    return bytes(rng.below(256) for _ in range(12))


def forged_stun(rng, agent, peer):
    """One forged or malformed STUN packet aimed at `agent`."""
    w = stun.Writer(bytearray(200))
    k = rng.below(10)
    if k == 0:  # no USERNAME / MESSAGE-INTEGRITY: 400 territory
        w.start(stun.BINDING_REQUEST, txid(rng))
        if rng.below(2):
            w.add_u32(stun.PRIORITY, rng.next32())
    elif k == 1:  # the right usernames, a guessed password
        w.start(stun.BINDING_REQUEST, txid(rng))
        w.add_bytes(stun.USERNAME, agent.local_ufrag + ":" + peer.local_ufrag)
        w.add_u32(stun.PRIORITY, rng.next32())
        w.add_bytes(stun.ICE_CONTROLLING, bytes(8))
        w.add_flag(stun.USE_CANDIDATE)
        w.add_integrity(b"guessed-password-guessed")
        w.add_fingerprint()
    elif k == 2:  # wrong ufrag, our own password (a stale or foreign session)
        w.start(stun.BINDING_REQUEST, txid(rng))
        w.add_bytes(stun.USERNAME, "nope:" + peer.local_ufrag)
        w.add_u32(stun.PRIORITY, 1)
        w.add_integrity(b"x" * 22)
        w.add_fingerprint()
    elif k == 3:  # answers to nothing: success, error, 487
        w.start((stun.BINDING_SUCCESS, stun.BINDING_ERROR)[rng.below(2)], txid(rng))
        w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "6.6.6.6", 666)
        if rng.below(2):
            w.add_error_code(487, "Role Conflict")
        w.add_integrity(b"guessed-password-guessed")
        w.add_fingerprint()
    elif k == 4:  # keepalive indications
        w.start(stun.BINDING_INDICATION, txid(rng))
        w.add_fingerprint()
    elif k == 5:  # other methods (TURN traffic at an ICE port)
        w.start((turn.ALLOCATE_REQUEST, turn.DATA_INDICATION, turn.REFRESH_SUCCESS)[rng.below(3)], txid(rng))
        w.add_xor_address(turn.XOR_PEER_ADDRESS, "6.6.6.6", 666)
        w.add_bytes(turn.DATA_ATTR, b"\x00\x01\x00\x00")
    elif k == 6:  # a bad FINGERPRINT on an otherwise plausible check
        w.start(stun.BINDING_REQUEST, txid(rng))
        w.add_bytes(stun.USERNAME, agent.local_ufrag + ":" + peer.local_ufrag)
        w.add_u32(stun.PRIORITY, 1)
        w.add_u32(stun.FINGERPRINT, rng.next32())
    else:  # malformed: header only, truncated, bad length, random tail
        w.start(stun.BINDING_REQUEST, txid(rng))
        w.add_bytes(stun.USERNAME, agent.local_ufrag + ":x")
        w.add_integrity(b"k")
        data = bytearray(w.view())
        cut = rng.below(len(data) + 1)
        data = data[:cut] if k == 7 else data + bytes(rng.below(256) for _ in range(1 + rng.below(9)))
        if k == 9 and len(data) >= 4:
            data[2] = rng.below(256)
        return bytes(data)
    return bytes(w.view())


def _sources(rng):
    return "%d.%d.%d.%d" % (1 + rng.below(223), rng.below(256), rng.below(256), 1 + rng.below(254)), \
        1 + rng.below(65535)


def spray_candidates(s, rng, per_candidate):
    """Inject forged packets now at every local candidate (host and srflx)
    of both agents; they cross the destination NAT as the internet would."""
    n = 0
    for agent, peer in ((s.a, s.b), (s.b, s.a)):
        for cand in agent.local_candidates:
            for _ in range(per_candidate):
                ip, port = _sources(rng)
                s.sim.inject(ip, port, cand.host, cand.port, forged_stun(rng, agent, peer))
                n += 1
    return n


def test_forged_stun_at_every_candidate_port_during_checks_and_after_connect():
    """RFC 8445 §7.3 / RFC 8489 §9.1.3: what fails authentication changes
    nothing. Sprayed every 5 ms from the first moment to well after connect,
    the sessions still connect and every data message arrives."""
    rng = Rng(7675)
    total = 0
    for nat_a, nat_b in ((None, None), ("full-cone", "full-cone"), ("restricted", "symmetric")):
        s = None
        gc.collect()
        s = Session(nat_a, nat_b, seed=3)
        role_a = s.a.controlling
        for _ in range(100):  # 200 ms of checks under fire
            total += spray_candidates(s, rng, 1)
            s.sim.advance(2)
        assert s.connect(), (nat_a, nat_b, s.a.counters, s.b.counters)
        delivered = 0
        for i in range(200):  # 1 s after connect: data every 5 ms in both directions
            total += spray_candidates(s, rng, 1)
            s.sim.advance(2)
            total += spray_candidates(s, rng, 1)
            for sender in (s.a, s.b):
                s.send(sender, ("\x7fdata %d" % i).encode())
            s.sim.advance(3)
            if i % 20 == 19:  # check and forget, so a 320K heap holds no long logs
                s.sim.advance(100)
                want = [("\x7fdata %d" % j).encode() for j in range(i - 19, i + 1)]
                assert s.data_b == want, (nat_a, nat_b, i)
                assert s.data_a == want, (nat_a, nat_b, i)
                delivered += 2 * len(want)
                del s.events_a[:], s.events_b[:], s.data_a[:], s.data_b[:]
                gc.collect()
        assert delivered == 400
        assert s.a.controlling == role_a
        for agent, peer_host in ((s.a, s.host_b), (s.b, s.host_a)):
            assert agent.state in ("connected", "completed")
            assert all(not c.host.startswith("6.6.") for c in agent.remote_candidates)
            within_caps(agent)
            c = agent.counters
            assert c["unauthenticated"] > 0 and c["malformed"] > 0 and c["unmatched"] > 0
        no_bugs(s.a, s.b)
    print("floods: %d forged packets sprayed at candidate ports" % total)


def test_remote_candidate_flood_stops_at_max_remote():
    """Trickled candidates beyond Config.max_remote are refused and counted
    (table_full); pairs never pass max_pairs."""
    cfg = Config(max_remote=6, max_pairs=10)
    agent = Agent(True, cfg)
    agent.add_host_candidate("10.0.0.1", 5000)
    agent.set_remote_credentials("abcd", "p" * 22)
    accepted = 0
    for i in range(500):
        cand = Candidate(foundation="f%d" % i, priority=1 + i, host="10.9.%d.%d" % (i // 250, i % 250), port=i + 1)
        accepted += bool(agent.add_remote_candidate(cand))
        agent.handle_timeout(i)
        while agent.poll_transmit() is not None:
            pass
    assert accepted == 6
    assert agent.counters["table_full"] == 494
    within_caps(agent)
    no_bugs(agent)
    print("floods: 500 remote candidates trickled, %d kept" % len(agent.remote_candidates))


def test_remote_candidate_flood_after_connect_changes_nothing():
    s = Session(config_a=Config(max_remote=8, max_pairs=12))
    assert s.connect()
    selected = s.a.selected_pair
    for i in range(300):
        s.a.add_remote_candidate(Candidate(foundation="x%d" % i, priority=2130706431, host="203.0.113.%d" % (i % 250),
                                           port=1000 + i))
    s.sim.kick(s.a)
    s.sim.advance(1000)
    within_caps(s.a)
    assert s.a.counters["table_full"] > 0
    assert s.a.selected_pair is selected and s.a.state in ("connected", "completed")
    s.send(s.a, b"\x7fstill here")
    s.sim.advance(200)
    assert s.data_b == [b"\x7fstill here"]
    no_bugs(s.a, s.b)


def _check(agent, peer_ufrag, key, rng, controlling=False):
    w = stun.Writer(bytearray(200)).start(stun.BINDING_REQUEST, txid(rng))
    w.add_bytes(stun.USERNAME, agent.local_ufrag + ":" + peer_ufrag)
    w.add_u32(stun.PRIORITY, 1862270975)
    w.add_bytes(stun.ICE_CONTROLLING if controlling else stun.ICE_CONTROLLED, bytes(8))
    w.add_integrity(key)
    w.add_fingerprint()
    return bytes(w.view())


def test_prflx_flood_without_the_password_learns_nothing():
    """§7.3.1.3: only an authenticated check teaches a peer-reflexive
    candidate; a thousand ports with a guessed password teach none."""
    rng = Rng(31)
    s = Session()
    for i in range(1000):  # 5 per ms, fed in as time goes (a 320K heap holds no backlog)
        s.sim.inject("203.0.113.%d" % (1 + i % 200), 10000 + i, s.host_a.ip, 5000,
                     _check(s.a, s.b.local_ufrag, b"guessed-password-guessed", rng, True))
        if i % 5 == 4:
            s.sim.advance(1)
    assert s.connect()
    s.sim.advance(500)
    assert all(not c.host.startswith("203.0.113.") for c in s.a.remote_candidates)
    assert s.a.counters["unauthenticated"] >= 1000 - s.a.counters["rate_limited"]
    within_caps(s.a)
    no_bugs(s.a, s.b)
    print("floods: 1000 unauthenticated prflx-looking checks, remote table %d" % len(s.a.remote_candidates))


def test_prflx_flood_with_the_password_stops_at_the_caps():
    """Authenticated checks from many ports (a peer gone wild, or one that
    leaked its password) fill the tables to their caps and no further, during
    checks and after connect; after connect the selected pair carries on."""
    rng = Rng(32)
    cfg = Config(max_remote=10, max_pairs=14, max_events=16)
    s = Session(config_a=cfg)
    key = s.a._local_key
    for i in range(600):  # during checks: the real peer competes with the flood
        s.sim.inject("198.18.%d.%d" % (i // 200, 1 + i % 200), 20000 + i, s.host_a.ip, 5000,
                     _check(s.a, s.b.local_ufrag, key, rng))
        if i % 4 == 3:
            s.sim.advance(1)
            within_caps(s.a)
    s.sim.run_until(lambda: s.sim.now > 200 and s.a.counters["table_full"] > 0, 3000)
    within_caps(s.a)
    assert s.a.counters["table_full"] > 0
    no_bugs(s.a, s.b)

    s = Session(config_a=cfg)
    assert s.connect()
    selected = s.a.selected_pair
    key = s.a._local_key
    for i in range(600):  # after connect
        s.sim.inject("198.18.%d.%d" % (i // 200, 1 + i % 200), 20000 + i, s.host_a.ip, 5000,
                     _check(s.a, s.b.local_ufrag, key, rng))
        if i % 4 == 3:
            s.sim.advance(1)
    s.sim.advance(500)
    within_caps(s.a)
    assert len(s.a.remote_candidates) == cfg.max_remote
    assert s.a.counters["table_full"] > 0
    assert s.a.selected_pair is selected and s.a.state in ("connected", "completed")
    s.send(s.a, b"\x7fafter the flood")
    s.send(s.b, b"\x7fand back")
    s.sim.advance(200)
    assert s.data_b == [b"\x7fafter the flood"]
    assert s.data_a == [b"\x7fand back"]
    no_bugs(s.a, s.b)
    print("floods: 1200 authenticated checks from 600 ports; remote table capped at %d" % cfg.max_remote)


def _drain(agent):
    out = []
    while True:
        t = agent.poll_transmit()
        if t is None:
            return out
        out.append((t[2], t[3], bytes(t[4])))


def test_error_responses_are_budgeted_and_never_amplify():
    """RFC 8489 §9.1.3 asks for 400/401 to unauthenticated requests; at most
    Config.error_responses_per_s go out per second, and never more bytes
    than the forged requests brought in, whatever the rate and size."""
    rng = Rng(400)
    limit = 10
    for rate_per_s, sizes in ((1, "min"), (10, "min"), (200, "min"), (1, "mixed"), (200, "mixed"), (2000, "mixed")):
        agent = Agent(False, Config(error_responses_per_s=limit))
        agent.add_host_candidate("192.0.2.1", 5000)
        agent.set_remote_credentials("peer", "p" * 22)
        peer = Agent(True)
        bytes_in = bytes_out = 0
        per_second = {}
        step = 1000 // rate_per_s if rate_per_s <= 1000 else 1
        per_step = max(1, rate_per_s // 1000)
        now = 0
        while now < 5000:
            for _ in range(per_step):
                if sizes == "min":
                    w = stun.Writer(bytearray(20)).start(stun.BINDING_REQUEST, txid(rng))
                    data = bytes(w.view())  # 20 bytes: the smallest request there is
                else:
                    data = forged_stun(rng, agent, peer)
                ip, port = _sources(rng)
                agent.handle_packet(now, "192.0.2.1", 5000, ip, port, data)
                bytes_in += len(data)
                for dst_ip, dst_port, out in _drain(agent):
                    assert (dst_ip, dst_port) == (ip, port)  # only ever back to the forger
                    msg = stun.decode(out)
                    assert msg.type == stun.BINDING_ERROR and msg.error_code()[0] in (400, 401)
                    assert len(out) <= len(data)
                    bytes_out += len(out)
                    per_second[now // 1000] = per_second.get(now // 1000, 0) + 1
            now += step
        assert max(per_second.values() or [0]) <= limit, per_second
        assert bytes_out <= bytes_in, (rate_per_s, sizes, bytes_out, bytes_in)
        no_bugs(agent)
        assert agent.remote_candidates == [] and agent.pairs == []
        print("floods: %d/s %s requests for 5 s: %d B in, %d B out, %d answers" % (
            rate_per_s, sizes, bytes_in, bytes_out, sum(per_second.values())))
