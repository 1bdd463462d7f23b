"""Data from the first valid pair (RFC 8445 §12.1), in both roles, and its
move to a better pair and to the nominated one without a datagram lost or
doubled. Two agents through the network simulator, 40 ms round trip.
Runs under pytest and under the MicroPython unix ports."""

from ice.sdp import Candidate
from scenarios import Session, relayed_behind_a_dead_address


def no_bugs(*agents):
    for agent in agents:
        assert agent.counters["internal_errors"] == 0, agent.counters


def stream(s, ms, step_ms=2):
    """For `ms` of virtual time, each side sends a numbered datagram every
    `step_ms` once it is connected, and what arrives is checked as it
    arrives: each datagram once, in order. Returns how many each sent."""
    sent = {s.a: 0, s.b: 0}
    got = {s.a: 0, s.b: 0}  # checked so far
    tags = {s.a: b"ab", s.b: b"ba"}

    def check():
        for receiver, sender, data in ((s.b, s.a, s.data_b), (s.a, s.b, s.data_a)):
            for payload in data:
                assert payload == b"\x80%s %d" % (tags[sender], got[receiver]), (payload, got[receiver])
                got[receiver] += 1
            del data[:]

    for i in range(ms // step_ms):
        for agent in (s.a, s.b):
            if agent.state in ("connected", "completed"):
                s.send(agent, b"\x80%s %d" % (tags[agent], sent[agent]))
                sent[agent] += 1
        s.sim.advance(step_ms)
        if i % 20 == 0:
            check()
    s.sim.advance(200)
    check()
    assert got[s.b] == sent[s.a] and got[s.a] == sent[s.b], (sent, got)  # none lost, none twice
    return sent[s.a], sent[s.b]


def test_data_flows_both_ways_before_nomination_rfc8445_s12_1():
    """A better pair still being checked holds nomination back; both sides
    send and receive on the valid pair meanwhile, the controlled side once
    its own check on the pair succeeded."""
    s = Session(None, None, use_stun=False, relay_b=False)  # b's candidates: signalled by hand
    a, b = s.a, s.b
    _, live = relayed_behind_a_dead_address(s)
    assert s.sim.run_until(lambda: a.state == "connected" and b.state == "connected", 2000)
    assert a.selected_pair.remote is live and not a.selected_pair.nominated
    assert b.selected_pair is not None and not b.selected_pair.nominated
    s.send(a, b"\x80early from a")
    s.send(b, b"\x80early from b")
    s.sim.advance(60)
    assert not a.selected_pair.nominated  # still before nomination
    assert s.data_b == [b"\x80early from a"] and s.data_a == [b"\x80early from b"]
    assert s.sim.run_until(lambda: a.state == "completed" and b.state == "completed", 3000)
    assert a.selected_pair.nominated and b.selected_pair.nominated
    no_bugs(a, b)


def test_data_moves_to_a_better_pair_then_the_nominated_one_without_loss():
    """b's second socket is signalled first, its better one 100 ms later, and
    an unreachable address better than both keeps nomination waiting. Data
    starts on the first valid pair, moves to the better pair once that is
    valid, stays there when it is nominated, and every datagram arrives once,
    in order, both ways."""
    s = Session(None, None, use_stun=False, relay_b=False)
    a, b = s.a, s.b
    s.host_b.listen(b, 6001)
    worse = b.add_host_candidate(s.host_b.ip, 6001)  # a lower local preference than 6000's
    better = b.local_candidates[0]
    assert better.port == 6000 and better.priority > worse.priority
    a.add_remote_candidate(Candidate(foundation="h9", priority=2130706431, host=s.host_b.ip, port=6999,
                                     type="host"))
    a.add_remote_candidate(Candidate.from_sdp(worse.to_sdp()))
    s.sim.kick(a)

    def late():
        a.add_remote_candidate(Candidate.from_sdp(better.to_sdp()))
        a.add_remote_candidate(None)
        s.sim.kick(a)

    s.sim.call_at(100, late)
    sent_a, sent_b = stream(s, 1500)  # checks every datagram arrives once, in order
    assert a.state == "completed" and b.state == "completed"
    assert a.selected_pair.remote.port == 6000 and a.selected_pair.nominated
    assert b.selected_pair.local.port == 6000 and b.selected_pair.nominated
    used = [p for p in a.pairs if p.bytes_sent]
    assert len(used) == 2 and used[0].remote.port == 6000  # data went on the first pair, then moved
    first_on_worse = [p for p in a.pairs if p.remote.port == 6001][0].bytes_sent
    assert first_on_worse > 0 and sent_a > 500 and sent_b > 500
    no_bugs(a, b)


def test_a_nominating_check_lost_in_an_outage_is_tried_again():
    """The link drops right after the first valid pair, before nomination:
    the nominating check times out, but the pair carrying data stays valid
    (consent judges its path, RFC 7675) and is nominated once the link is
    back; the session never fails."""
    s = Session(None, "port-restricted")
    assert s.sim.run_until(lambda: s.a.state == "connected", 3000)
    s.sim.partition(s.host_a, True)
    s.sim.advance(11000)  # longer than a check's seven sends
    assert s.a.state == "disconnected" and s.b.state == "disconnected"
    s.sim.partition(s.host_a, False)
    assert s.sim.run_until(lambda: s.a.state == "completed" and s.b.state == "completed", 10000)
    no_bugs(s.a, s.b)
