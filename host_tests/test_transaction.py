"""The STUN transaction table and its one retransmission rule (RFC 8489
§6.2.1), as TURN and ICE configure it, and the pacing of new requests
(RFC 8445 §14.2). Runs under pytest and under the MicroPython unix ports."""

from ice.compat import ticks_add, ticks_diff
from ice.transaction import Pacer, Transactions


def schedule(table, start=0):
    """Send times of one transaction until it times out, and when it does."""
    t = table.open(1, "10.0.0.1", 1, "10.0.0.2", 2)
    now = start
    sends = []
    while True:
        table.sent(t, now)
        sends.append(ticks_diff(now, start))
        now = t.deadline
        assert table.due(ticks_add(now, -1)) is None and table.due(now) is t
        if not table.should_resend(t):
            return sends, ticks_diff(now, start)


def test_rfc8489_s6_2_1_schedule_rto_500_rc_7_rm_16():
    """§6.2.1's own example: sends at 0, 500, 1500, 3500, 7500, 15500 and
    31500 ms, and failure at 39500 ms."""
    sends, timeout = schedule(Transactions(4, rto_ms=500, max_sends=7))
    assert sends == [0, 500, 1500, 3500, 7500, 15500, 31500]
    assert timeout == 39500


def test_ice_checks_cap_the_rto():
    """The agent's checks: RTO doubles up to 1.6 s, seven sends, the last
    waits one capped RTO (RFC 8445 §14.3 leaves the numbers to us)."""
    sends, timeout = schedule(Transactions(4, rto_ms=500, rto_max_ms=1600, max_sends=7, last_wait_ms=1600))
    assert sends == [0, 500, 1500, 3100, 4700, 6300, 7900]
    assert timeout == 9500


def test_reliable_transport_sends_once_rfc8489_s6_2_2():
    sends, timeout = schedule(Transactions(4, rto_ms=500, max_sends=1, last_wait_ms=39500))
    assert sends == [0] and timeout == 39500


def test_deadlines_cross_the_tick_wrap():
    start = ticks_add(0, -700)  # 700 ms before the counter wraps
    sends, timeout = schedule(Transactions(4, rto_ms=500, max_sends=3), start)
    assert sends == [0, 500, 1500] and timeout == 9500


def test_a_full_table_answers_none_and_slots_are_reused():
    table = Transactions(2)
    a = table.open(1, "a", 1, "b", 2, "subject")
    b = table.open(2, "a", 1, "b", 2)
    assert a is not None and b is not None and table.open(1, "a", 1, "b", 2) is None
    assert a.txid != b.txid and len(a.txid) == 12
    assert table.find(a.txid) is a and table.find(b"x" * 12) is None
    assert table.count(1) == 1 and table.count(1, "subject") == 1 and table.count(1, "other") == 0
    table.close(a)
    assert a.subject is None and table.find(a.txid) is None and table.open(3, "a", 1, "b", 2) is a
    table.close_all(2)
    assert table.count(2) == 0 and table.count(3) == 1
    table.close_all()
    assert table.next_deadline() is None


def test_renew_starts_a_fresh_transaction_rfc8489_s9_2_5():
    table = Transactions(2, rto_ms=500, max_sends=2)
    t = table.open(1, "a", 1, "b", 2)
    table.sent(t, 0)
    table.sent(t, 500)
    assert not table.should_resend(t)
    old = t.txid
    table.renew(t)
    assert t.txid != old and t.sends == 0 and t.retries == 1 and table.should_resend(t)
    table.sent(t, 600)
    assert t.deadline == 1100  # the RTO starts over


def test_next_deadline_is_the_earliest():
    table = Transactions(3, rto_ms=500)
    a = table.open(1, "a", 1, "b", 2)
    b = table.open(1, "a", 1, "b", 2)
    table.sent(a, 100)
    table.sent(b, 0)
    assert table.next_deadline() == 500
    assert table.next_deadline(300) == 300


def test_pacer_bursts_then_keeps_the_rate_rfc8445_s14_2():
    pacer = Pacer(50, 2)
    assert pacer.ready(0)
    pacer.charge(0)
    assert pacer.ready(0)  # the burst of two
    pacer.charge(0)
    assert not pacer.ready(49) and pacer.ready(50)
    pacer.charge(50)
    assert pacer.next_at == 100
    assert pacer.ready(1000)  # after a quiet spell the burst is back
    pacer.charge(1000)
    assert pacer.ready(1000)
