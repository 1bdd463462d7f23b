"""The check list on its own (RFC 8445 §6.1.2): the two transition tables,
pairing order, freezing, the triggered queue, pruning, and when the
controlling agent nominates. No agent, no network.
Runs under pytest and under the MicroPython unix ports (host_tests/mp_run.py)."""

from ice import checklist as cl
from ice.agent import LocalCandidate
from ice.checklist import CheckList, Pair
from ice.sdp import Candidate


def local(foundation, port, kind="host"):
    return LocalCandidate("10.0.0.1", port, 65535, foundation=foundation, priority=1000 + port,
                          host="10.0.0.1", port=port, type=kind)


def remote(foundation, port, kind="host"):
    return Candidate(foundation=foundation, priority=2000 + port, host="10.0.0.2", port=port, type=kind)


def test_check_state_table_rfc8445_s6_1_2_6():
    """Every (state, event) of the check-state table, written out."""
    F, W, P, S, X = cl.FROZEN, cl.WAITING, cl.IN_PROGRESS, cl.SUCCEEDED, cl.FAILED
    expected = {
        #      UNFREEZE TRIGGER START SUCCEED FAIL
        F: (W, W, P, S, X),
        W: (W, W, P, S, X),
        P: (P, W, P, S, X),  # §7.3.1.4: a check from the peer cancels ours, a new one goes
        S: (S, S, S, S, X),  # §7.3.1.4: not checked again on a trigger; valid while nominated
        X: (X, W, P, S, X),  # §7.3.1.4: a failed pair is checked again on a trigger
    }
    events = (cl.UNFREEZE, cl.TRIGGER, cl.START, cl.SUCCEED, cl.FAIL)
    names = ("unfreeze", "trigger", "start", "succeed", "fail")
    for state, row in expected.items():
        for event, want in zip(events, row):
            pair = Pair(local("1", 1), remote("1", 2), 1)
            pair.state = state
            assert pair.apply(event) == want, (cl.PAIR_STATES[state], names[event])


def test_nomination_table():
    N, G, D = cl.NOT_NOMINATED, cl.NOMINATING, cl.NOMINATED
    expected = {N: (G, D, N), G: (G, D, N), D: (D, D, D)}  # WANT, CONFIRM, DROP
    for state, row in expected.items():
        for event, want in zip((cl.WANT, cl.CONFIRM, cl.DROP), row):
            pair = Pair(local("1", 1), remote("1", 2), 1)
            pair.nomination = state
            assert pair.nominate(event) == want


def test_success_validates_the_pair_or_its_prflx_twin_and_failure_drops_it_rfc8445_s7_2_5():
    checked = Pair(local("1", 1), remote("1", 2), 10)
    twin = Pair(local("9", 1, "prflx"), remote("1", 2), 5)
    checked.check_started(100)
    checked.rtt_ms = 30
    checked.succeed(twin, None)
    assert checked.state == cl.SUCCEEDED and not checked.valid and checked.valid_pair is twin
    assert twin.state == cl.SUCCEEDED and twin.valid and twin.rtt_ms == 30
    assert checked.first_check_ms == 100
    twin.nominate(cl.WANT)
    twin.fail()
    assert twin.state == cl.FAILED and not twin.valid and twin.nomination == cl.NOT_NOMINATED


def test_pairs_in_priority_order_and_frozen_behind_their_foundation_rfc8838_s10():
    checks = CheckList(8)
    a = checks.add(local("1", 1), remote("1", 10), 100)
    b = checks.add(local("1", 2), remote("1", 10), 300)  # same foundation "1:1": frozen behind a
    c = checks.add(local("2", 3), remote("1", 10), 200)
    assert checks.pairs == [b, c, a]
    assert (a.state, b.state, c.state) == (cl.WAITING, cl.FROZEN, cl.WAITING)
    assert checks.add(a.local, a.remote, 999) is a  # no twin
    assert checks.find(c.local, c.remote) is c


def test_next_check_triggered_first_then_waiting_then_unfreezing_rfc8445_s6_1_4_2():
    checks = CheckList(8)
    a = checks.add(local("1", 1), remote("1", 10), 100)
    b = checks.add(local("1", 2), remote("1", 10), 300)  # frozen behind a
    c = checks.add(local("2", 3), remote("1", 10), 200)
    checks.trigger(a)
    assert checks.next_to_check() is a  # the triggered queue first (§6.1.4.2)
    a.check_started(0)
    assert checks.next_to_check() is c  # then the best Waiting pair
    c.check_started(0)
    assert checks.next_to_check() is None  # b's foundation is in progress
    assert checks.has_work()
    a.fail()
    c.fail()
    assert checks.next_to_check() is b and b.state == cl.WAITING  # unfrozen once its foundation is idle


def test_a_success_unfreezes_its_foundation_rfc8445_s7_2_5_3_3():
    checks = CheckList(8)
    a = checks.add(local("1", 1), remote("1", 10), 100)
    b = checks.add(local("1", 2), remote("1", 10), 300)
    a.check_started(0)
    a.succeed(a, 20)
    checks.unfreeze(a.foundation)
    assert b.state == cl.WAITING


def test_a_full_list_keeps_the_best_pairs_rfc8445_s6_1_2_5():
    checks = CheckList(2)
    low = checks.add(local("1", 1), remote("1", 10), 100)
    mid = checks.add(local("2", 2), remote("1", 10), 200)
    assert checks.add(local("3", 3), remote("1", 10), 50) is None  # worse than all: refused
    high = checks.add(local("4", 4), remote("1", 10), 300)
    assert checks.pairs == [high, mid] and low not in checks.pairs
    mid.check_started(0)
    high.check_started(0)
    assert checks.add(local("5", 5), remote("1", 10), 400) is None  # both busy: nothing dropped
    assert len(checks.pairs) == 2


def test_complete_drops_what_has_not_started_rfc8445_s8_1_2():
    checks = CheckList(8)
    a = checks.add(local("1", 1), remote("1", 10), 300)
    b = checks.add(local("2", 2), remote("1", 10), 200)
    c = checks.add(local("3", 3), remote("1", 10), 100)
    a.check_started(0)
    a.succeed(a, 10)
    b.check_started(0)
    checks.trigger(c)
    checks.complete()
    assert checks.pairs == [a, b] and checks.triggered == []


def test_data_is_taken_from_valid_pairs_and_checked_in_peers_rfc8445_s12_1():
    """A pair carries data to us once valid, or once its peer passed an
    authenticated check (it may send as soon as its own check succeeded)."""
    checks = CheckList(8)
    a = checks.add(local("1", 1), remote("1", 10), 300)
    b = checks.add(local("2", 2), remote("1", 11), 200)
    assert checks.receiving_from("10.0.0.1", 1, "10.0.0.2", 10) is None  # neither yet
    a.succeed(a, 10)
    b.requests_received += 1
    assert checks.receiving_from("10.0.0.1", 1, "10.0.0.2", 10) is a
    assert checks.receiving_from("10.0.0.1", 2, "10.0.0.2", 11) is b
    assert checks.receiving_from("10.0.0.1", 2, "10.0.0.2", 10) is None
    assert checks.receiving_from("10.0.0.1", 1, "10.0.0.3", 10) is None


def test_nomination_waits_for_better_pairs_their_patience_then_nominates_rfc8445_s8_1_1():
    """The best valid pair waits while a better pair has not been checked, or
    was checked less than 3 RTT + Ta ago; a better pair that fails or stays
    silent that long no longer holds it back; whatever comes, the wait ends
    two RTOs and four RTTs after the first valid pair."""
    checks = CheckList(8)
    better = checks.add(local("1", 1), remote("1", 10), 300)
    best = checks.add(local("2", 2), remote("1", 10), 200)
    best.check_started(0)
    best.succeed(best, 20)  # patience 3 x 20 + 50 = 110 ms; the wait ends at 20 + 1000 + 80 = 1100
    assert checks.nomination(20, 20, 50, 500) == (None, 1100)  # better not checked yet
    better.check_started(30)
    assert checks.nomination(40, 20, 50, 500) == (None, 140)  # 30 + 110
    assert checks.nomination(140, 20, 50, 500) == (best, None)  # its patience is over
    assert checks.nomination(1100, 20, 50, 500) == (best, None)
    better.fail()
    assert checks.nomination(40, 20, 50, 500) == (best, None)  # nothing better pending
    assert CheckList(8).nomination(0, 0, 50, 500) == (None, None)  # nothing valid


def test_a_relayed_best_pair_waits_one_retransmission_for_a_direct_one():
    checks = CheckList(8)
    direct = checks.add(local("1", 1), remote("1", 10), 300)
    relayed = checks.add(local("2", 2, "relay"), remote("1", 10), 100)
    relayed.check_started(0)
    relayed.succeed(relayed, 40)  # patience: RTO + 2 RTT = 580 ms
    direct.check_started(10)
    assert checks.nomination(100, 40, 50, 500) == (None, 590)
    assert checks.nomination(590, 40, 50, 500) == (relayed, None)


def test_byte_counts_carry_into_whole_mebibytes_and_stay_small_ints():
    """A camera sends gigabytes: a count that grew past 2^30 would be a heap
    int on a board, allocated per datagram. The pair keeps whole MiB and a
    rest below 1 MiB; only reading bytes_sent makes the big number."""
    pair = Pair(local("L1", 5000), remote("R1", 6000), 1)
    total = 0
    for size in (1100, 1200, 7, 1 << 20, 3 << 20, 1):
        for _ in range(700):
            pair.count_sent(size)
            pair.count_received(size)
            total += size
    assert pair.bytes_sent == total and pair.bytes_received == total
    assert total > 1 << 31
    assert pair.sent_rest < 1 << 20 and pair.received_rest < 1 << 20
    assert pair.sent_mib == total >> 20 and pair.stats()["bytes_sent"] == total
