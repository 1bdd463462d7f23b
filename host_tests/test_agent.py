"""The sans-IO agent against a peer agent in the network simulator.

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

from ice import stun
from ice.agent import IN_PROGRESS, Agent, Config
from ice.sdp import Candidate
from helpers import raises
from scenarios import (
    NAT_CHOICES, STUN_IP, Session, best_valid_is_selected, direct_path_exists, relayed_behind_a_dead_address)


def no_bugs(*agents):
    for agent in agents:
        assert agent.counters["internal_errors"] == 0, agent.counters


def test_host_to_host_connects_and_moves_data_both_ways():
    s = Session()
    assert s.connect()
    assert s.a.selected_pair.local.type == "host" and s.a.selected_pair.remote.type == "host"
    assert s.a.controlling and not s.b.controlling
    for i in range(5):
        s.send(s.a, b"\x80frame-%d" % i)
        s.send(s.b, b"\x80ack-%d" % i)
    s.sim.advance(100)
    assert s.data_b == [b"\x80frame-%d" % i for i in range(5)]
    assert s.data_a == [b"\x80ack-%d" % i for i in range(5)]
    pair = s.a.selected_pair
    assert pair.bytes_sent == sum(len(b"\x80frame-%d" % i) for i in range(5))
    assert pair.rtt_ms is not None and 15 <= pair.rtt_ms <= 60  # 2 x 10 ms links each way
    assert pair.requests_sent >= 1 and pair.responses_received >= 1
    stats = s.a.stats()
    selected = stats["selected"]
    assert (selected["local_type"], selected["remote_type"]) == ("host", "host") and selected["nominated"]
    assert stats["state"] in ("connected", "completed")
    assert stats["pairs"][0]["bytes_sent"] == pair.bytes_sent
    no_bugs(s.a, s.b)


def test_every_nat_combination_with_a_direct_path_connects():
    """RFC 4787 NAT behaviours on both sides: cells with a direct path
    connect on the best valid pair; the rest fail cleanly (they need TURN)."""
    for nat_a in NAT_CHOICES:
        for nat_b in NAT_CHOICES:
            s = Session(nat_a, nat_b)
            ok = s.connect()
            assert ok == direct_path_exists(nat_a, nat_b), (nat_a, nat_b)
            if ok:
                assert best_valid_is_selected(s.a), (nat_a, nat_b)
                assert s.a.selected_pair.remote.host == s.b.selected_pair.local.host or nat_b
            else:
                assert s.sim.run_until(s.both_failed, 60000), (nat_a, nat_b, s.a.state, s.b.state)
            no_bugs(s.a, s.b)


def test_selected_types_say_how_the_path_was_found():
    s = Session("symmetric", None)
    assert s.connect()
    # A's symmetric NAT maps a new port towards B: B learns it as prflx (§7.3.1.3).
    assert s.b.selected_pair.remote.type == "prflx"
    s = Session(None, "full-cone")
    assert s.connect()
    assert s.a.selected_pair.remote.type == "srflx"


def test_peer_reflexive_candidates_on_both_sides():
    """§7.2.5.3.1 and §7.3.1.3: A behind a NAT without a STUN server and
    without signalling its candidates. B learns A as a remote prflx from A's
    checks; A learns its own NAT mapping as a local prflx from B's answer."""
    s = Session("full-cone", None, use_stun=False, relay_a=False)
    assert s.connect()
    assert s.b.selected_pair.remote.type == "prflx"
    assert s.b.selected_pair.remote.host == "198.51.100.1"
    assert any(c.type == "prflx" for c in s.a.local_candidates)
    assert s.a.selected_pair.local.type == "prflx"
    no_bugs(s.a, s.b)


def test_role_conflict_both_controlling_resolves_with_487():
    """§7.3.1.1 / §7.2.5.1: the larger tie-breaker keeps control."""
    s = Session(controlling_b=True)
    assert s.connect()
    assert s.a.controlling != s.b.controlling
    winner = s.a if s.a._tiebreaker >= s.b._tiebreaker else s.b
    assert winner.controlling
    no_bugs(s.a, s.b)


def test_role_conflict_both_controlled_resolves():
    s = Session()
    s.a._set_role(False)
    assert s.connect()
    assert s.a.controlling != s.b.controlling
    winner = s.a if s.a._tiebreaker >= s.b._tiebreaker else s.b
    assert winner.controlling


def test_trickle_candidates_before_credentials():
    """RFC 8838: candidates may come before ice-ufrag/ice-pwd; checks wait."""
    s = Session(None, "restricted", signal_creds=False)
    s.sim.advance(500)
    assert s.a.selected_pair is None and s.a.remote_candidates
    assert all(p.requests_sent == 0 for p in s.a.pairs)
    s.exchange_credentials()
    assert s.connect()


def test_trickle_checks_arrive_before_the_peer_knows_our_credentials():
    """B receives A's checks before it has A's ufrag: it answers (it knows
    its own password), learns A as prflx, and checks back once it can."""
    s = Session(None, None, signal_creds=False, relay_a=False)
    s.a.set_remote_credentials(s.b.local_ufrag, s.b.local_pwd)
    s.a.add_remote_candidate(Candidate.from_sdp(s.b.local_candidates[0].to_sdp()))
    s.sim.kick(s.a)
    s.sim.advance(300)
    assert s.b.remote_candidates and s.b.remote_candidates[0].type == "prflx"
    assert s.b.selected_pair is None  # B cannot run its own checks yet
    assert all(p.requests_sent == 0 for p in s.b.pairs)
    s.b.set_remote_credentials(s.a.local_ufrag, s.a.local_pwd)
    s.sim.kick(s.b)
    assert s.connect()
    no_bugs(s.a, s.b)


def test_trickle_end_of_candidates_first_then_late_candidates():
    s = Session(None, "port-restricted", relay_a=False, relay_b=False)
    s.a.add_remote_candidate(None)
    s.b.add_remote_candidate(None)
    s.sim.advance(200)
    assert s.a.state != "failed"  # no pairs yet: nothing has failed
    for cand in s.b.local_candidates:
        s.a.add_remote_candidate(Candidate.from_sdp(cand.to_sdp()))
    for cand in s.a.local_candidates:
        s.b.add_remote_candidate(Candidate.from_sdp(cand.to_sdp()))
    s.sim.kick(s.a)
    s.sim.kick(s.b)
    assert s.connect()


def test_ice_restart_gives_new_credentials_and_reconnects():
    """§9: new ufrag/pwd, fresh check list; data keeps flowing meanwhile."""
    s = Session(None, "full-cone")
    assert s.connect()
    old_ufrag = s.a.local_ufrag
    s.a.restart()
    s.b.restart()
    assert s.a.local_ufrag != old_ufrag and s.a.pairs == []
    assert s.a.state == "checking"
    s.send(s.a, b"\x80during-restart")
    s.exchange_credentials()
    for agent, peer in ((s.a, s.b), (s.b, s.a)):
        for cand in agent.local_candidates:
            peer.add_remote_candidate(Candidate.from_sdp(cand.to_sdp()))
        s.sim.kick(peer)
    assert s.connect()
    assert b"\x80during-restart" in s.data_b
    no_bugs(s.a, s.b)


def test_full_agent_against_lite_peer_takes_control():
    """§6.1.1: a full agent facing a lite one controls; regular nomination."""
    s = Session(None, None, controlling_b=False, lite_b=True)
    s.a._set_role(False)
    s.exchange_credentials()
    assert s.connect()
    assert s.a.controlling and not s.b.controlling
    assert all(p.requests_sent == 0 for p in s.b.pairs)  # lite sends no checks
    s.send(s.b, b"\x80from-lite")
    s.sim.advance(100)
    assert s.data_a == [b"\x80from-lite"]


def test_lite_agent_refuses_server_reflexive_gathering():
    assert raises(ValueError, Agent(False, lite=True).add_stun_server, STUN_IP)


def test_aggressive_nomination_for_rfc5245_peers():
    s = Session(None, "restricted", config_a=Config(aggressive=True))
    assert s.connect()
    assert s.a.selected_pair.nominated and s.b.selected_pair.nominated


def test_consent_lost_goes_disconnected_then_back_then_failed():
    """RFC 7675: missing consent responses -> disconnected; they return ->
    connected; 30 s without any -> failed and sending stops."""
    s = Session()
    assert s.connect()
    s.sim.partition(s.host_b, True)
    assert s.sim.run_until(lambda: s.a.state == "disconnected", 15000)
    s.sim.partition(s.host_b, False)
    assert s.sim.run_until(lambda: s.a.state in ("connected", "completed"), 10000)
    s.sim.partition(s.host_b, True)
    assert s.sim.run_until(lambda: s.a.state == "failed", 40000)
    assert raises(ValueError, s.a.send, b"\x80late")
    no_bugs(s.a, s.b)


def test_consent_requests_are_randomised_between_4_and_6_seconds():
    s = Session()
    assert s.connect()
    sends = []
    poll = s.a.poll_transmit

    def recording_poll():
        t = poll()
        if t is not None and t[4][0:2] == b"\x00\x01":  # a Binding request
            sends.append(s.sim.now)
        return t

    s.a.poll_transmit = recording_poll
    s.sim.advance(60000)
    gaps = [b - a for a, b in zip(sends, sends[1:]) if b - a > 1000]
    assert len(gaps) >= 8
    assert min(gaps) >= 4000 and max(gaps) <= 6000
    assert len(set(gaps)) > 1
    assert s.a.state in ("connected", "completed")


def test_connects_through_30_percent_loss():
    for seed in (1, 2, 3):
        s = Session(None, "full-cone", seed=seed, loss=0.3)
        assert s.connect(30000), seed
        no_bugs(s.a, s.b)


def _forged_packets(s):
    """Garbage, unauthenticated requests, replies nobody asked for."""
    txid = b"\x01" * 12
    out = [b"", b"\x00", b"\x00\x01\x00\x00", b"\xff" * 40, bytes(20)]
    out.append(b"\x00\x01\x00\x08\x21\x12\xa4\x42" + bytes(12))  # the cookie, a length past the end
    w = stun.Writer(bytearray(200))
    w.start(stun.BINDING_REQUEST, txid)  # no USERNAME / MESSAGE-INTEGRITY
    w.add_u32(stun.PRIORITY, 1)
    out.append(bytes(w.view()))
    w.start(stun.BINDING_REQUEST, txid)  # right ufrag, wrong password
    w.add_bytes(stun.USERNAME, s.a.local_ufrag + ":" + s.b.local_ufrag)
    w.add_u32(stun.PRIORITY, 1)
    w.add_bytes(stun.ICE_CONTROLLING, b"\xff" * 8)
    w.add_flag(stun.USE_CANDIDATE)
    w.add_integrity(b"not the password")
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(stun.BINDING_SUCCESS, txid)  # an answer to nothing
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "6.6.6.6", 666)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    out.append(b"\x80not-from-a-valid-pair")
    return out


def test_forged_and_unauthenticated_packets_change_nothing():
    s = Session(None, None)
    forged = _forged_packets(s)
    for i in range(50):  # during checks and after
        for data in forged:
            s.sim.inject("6.6.6.6", 666, s.host_a.ip, 5000, data, at_ms=i * 20)
    assert s.connect()
    s.sim.advance(1500)
    assert s.a.selected_pair.remote.host == s.host_b.ip
    assert all(c.host != "6.6.6.6" for c in s.a.remote_candidates)
    assert all(p.remote.host != "6.6.6.6" for p in s.a.pairs)
    assert s.a.controlling  # the forged ICE-CONTROLLING moved nothing
    c = s.a.counters
    assert c["malformed"] > 0 and c["unauthenticated"] > 0 and c["unmatched"] > 0
    assert c["unknown_source"] > 0 and c["rate_limited"] > 0
    assert s.data_a == []
    no_bugs(s.a, s.b)


def test_table_caps_are_counted_not_grown():
    agent = Agent(True, Config(max_local=1, max_remote=2, max_pairs=2))
    agent.add_host_candidate("10.0.0.1", 5000)
    assert raises(ValueError, agent.add_host_candidate, "10.0.0.2", 5000)
    for port in range(1, 6):
        cand = Candidate(foundation="f%d" % port, priority=1000 + port, host="10.0.0.9", port=port)
        agent.add_remote_candidate(cand)
    assert len(agent.remote_candidates) == 2 and len(agent.pairs) == 2
    assert agent.counters["table_full"] == 4  # one local, three remote


def test_unresolved_and_foreign_candidates_are_not_paired():
    agent = Agent(True)
    agent.add_host_candidate("10.0.0.1", 5000)
    assert not agent.add_remote_candidate(Candidate.from_sdp(
        "candidate:1 1 udp 2122260223 4e2b2c3a-1111-2222-3333-444455556666.local 5000 typ host"))
    assert not agent.add_remote_candidate(Candidate.from_sdp(
        "candidate:2 1 tcp 1518280447 10.0.0.9 9 typ host tcptype active"))
    assert not agent.add_remote_candidate(Candidate.from_sdp(
        "candidate:3 2 udp 2122260222 10.0.0.9 5001 typ host"))
    assert agent.pairs == []


def test_bad_api_use_raises_with_a_message():
    agent = Agent(True)
    for call in (lambda: agent.send(b"x"), lambda: agent.set_remote_credentials("", "")):
        try:
            call()
            raised = None
        except ValueError as e:
            raised = str(e)
        assert raised
    agent.close()
    assert agent.state == "closed" and agent.poll_timeout() is None


def test_priorities_follow_rfc8445():
    """§5.1.2.1 candidate priority and §6.1.2.3 pair priority."""
    from ice.agent import candidate_priority, pair_priority

    assert candidate_priority(126, 65535) == 2130706431
    assert candidate_priority(100, 65535) == 1694498815
    g, d = 2130706431, 1694498815
    assert pair_priority(g, d) == (d << 32) + 2 * g + 1
    assert pair_priority(d, g) == (d << 32) + 2 * g


def test_handle_packet_survives_random_and_mutated_input():
    """Whatever the bytes, handle_packet raises nothing and no bug counter moves."""
    from netsim import Rng

    rng = Rng(8445)
    s = Session()
    assert s.connect()
    agent = s.a
    w = stun.Writer(bytearray(200)).start(stun.BINDING_REQUEST, b"\x02" * 12)
    w.add_bytes(stun.USERNAME, agent.local_ufrag + ":" + s.b.local_ufrag)
    w.add_u32(stun.PRIORITY, 12345)
    w.add_bytes(stun.ICE_CONTROLLED, b"\x00" * 8)
    w.add_flag(stun.USE_CANDIDATE)
    w.add_integrity(agent.local_pwd.encode())
    w.add_fingerprint()
    valid = bytes(w.view())
    for i in range(2000):
        if i % 2:
            data = bytearray(valid)
            for _ in range(1 + rng.below(3)):
                data[rng.below(len(data))] ^= 1 << rng.below(8)
        else:
            data = bytes(rng.below(256) for _ in range(rng.below(80)))
        agent.handle_packet(s.sim.now, s.host_a.ip, 5000, "203.0.113.66", 1000 + i, bytes(data))
        while agent.poll_transmit() is not None:
            pass
    no_bugs(agent)
    assert agent.state in ("connected", "completed")
    assert agent.selected_pair.remote.host == s.host_b.ip


def test_signalled_candidate_replaces_a_learned_prflx():
    """§7.3.1.3: a prflx remote later signalled takes the signalled identity."""
    s = Session(None, None, relay_a=False)
    s.sim.advance(300)
    learned = s.b.remote_candidates[0]
    assert learned.type == "prflx"
    signalled = Candidate.from_sdp(s.a.local_candidates[0].to_sdp())
    assert s.b.add_remote_candidate(signalled)
    assert len(s.b.remote_candidates) == 1 and learned.type == "host"
    assert learned.foundation == signalled.foundation
    assert all(p.foundation.endswith(":" + signalled.foundation) for p in s.b.pairs if p.remote is learned)
    # The pairs are re-prioritised with the signalled priority and re-sorted.
    from ice.agent import pair_priority
    for p in s.b.pairs:
        if p.remote is learned:
            assert p.priority == pair_priority(learned.priority, p.local.priority)
    assert [p.priority for p in s.b.pairs] == sorted((p.priority for p in s.b.pairs), reverse=True)


def test_request_with_a_stale_remote_ufrag_gets_401():
    """§7.3: USERNAME must be ours:theirs; the right password alone is not enough."""
    s = Session()
    assert s.connect()
    before = s.a.counters["unauthenticated"]
    w = stun.Writer(bytearray(200)).start(stun.BINDING_REQUEST, b"\x03" * 12)
    w.add_bytes(stun.USERNAME, s.a.local_ufrag + ":stale")
    w.add_u32(stun.PRIORITY, 1)
    w.add_bytes(stun.ICE_CONTROLLED, b"\x00" * 8)
    w.add_integrity(s.a.local_pwd.encode())
    w.add_fingerprint()
    s.a.handle_packet(s.sim.now, s.host_a.ip, 5000, "203.0.113.77", 9, bytes(w.view()))
    reply = stun.decode(bytes(s.a.poll_transmit()[4]))
    assert reply.type == stun.BINDING_ERROR and reply.error_code()[0] == 401
    assert s.a.counters["unauthenticated"] == before + 1
    assert all(c.host != "203.0.113.77" for c in s.a.remote_candidates)


def test_relayed_pair_waits_for_better_pairs_only_through_one_retransmission():
    """Regular nomination (§8.1.1) of a relayed pair: a better pair that was
    checked and stayed silent through one retransmission (RTO, RFC 8489
    §6.2.1) stops holding it back, before the cap of two RTOs; data flows on
    the relayed pair from its first success."""
    s = Session(None, None, use_stun=False, relay_b=False)  # b's candidates: signalled by hand
    a, b = s.a, s.b
    dead, relay = relayed_behind_a_dead_address(s)
    assert s.sim.run_until(lambda: a.selected_pair is not None, 5000)
    assert a.selected_pair.remote is relay and a.state == "connected"  # data may flow, not nominated
    assert s.sim.run_until(lambda: a.selected_pair.nominated, 5000)
    waited = s.sim.now - a._first_valid_at
    assert a.selected_pair.remote is relay and a.state == "completed"
    better = [p for p in a.pairs if p.remote is dead][0]
    assert better.state == IN_PROGRESS and better.requests_sent >= 2  # retransmitted: given its chance
    assert a.config.rto_ms <= waited < 2 * a.config.rto_ms, waited
    assert s.connect()
    no_bugs(a, b)


def test_a_better_pair_long_silent_does_not_delay_nomination():
    """Regular nomination (§8.1.1): a better pair checked long ago without
    an answer does not hold back a pair that succeeds later; the wait is
    measured from each better pair's first check, not from the success."""
    s = Session(None, None, use_stun=False, relay_a=False, relay_b=False)  # b learns a from a's checks
    a = s.a
    a.add_remote_candidate(Candidate(foundation="h1", priority=2130706431, host=s.host_b.ip, port=6999,
                                     type="host"))
    s.sim.kick(a)
    s.sim.advance(400)  # the host pair has been silent for 400 ms when the live candidate arrives
    live = Candidate(foundation="s1", priority=1694498815, host=s.host_b.ip, port=6000, type="srflx",
                     related_address="10.9.9.9", related_port=6000)
    a.add_remote_candidate(live)
    a.add_remote_candidate(None)
    s.sim.kick(a)
    assert s.sim.run_until(lambda: a.selected_pair is not None, 5000)
    assert a.selected_pair.remote is live
    rtt = a.selected_pair.rtt_ms
    waited = s.sim.now - a._first_valid_at
    assert waited < 3 * rtt + a.config.ta_ms, (waited, rtt)  # no wait: only the nomination round trip
    no_bugs(a, s.b)
