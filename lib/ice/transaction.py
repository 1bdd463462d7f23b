"""STUN client transactions (RFC 8489 §6.2), shared by ICE checks, gathering
and TURN: a fixed table of outstanding requests with one retransmission rule,
and the pacing of new requests (RFC 8445 §14.2).

The rule: a request waits RTO, then is sent again; the wait doubles after
every send, capped at `rto_max_ms`; after the last of `max_sends` sends the
transaction waits `last_wait_ms` (Rm x RTO in RFC 8489 §6.2.1) and times
out. Over TCP a request is sent once and waits `last_wait_ms` (§6.2.2).

The owner builds the request itself (a retransmission is identical, so it
is simply built again) and keeps its own context on the transaction:
`subject` (a candidate pair, a TURN peer) and `value` (PRIORITY, LIFETIME).
"""

from ice import stun
from ice.compat import ticks_add, ticks_diff, ticks_earliest

try:
    from typing import Any  # for the type checker; MicroPython has no typing
except ImportError:
    pass


class Transaction:
    """One outstanding request; a slot of a `Transactions` table."""

    def __init__(self):
        self.kind = 0  # 0: free; otherwise the owner's kind of request
        self.txid = b""
        self.base_ip = ""  # where the request leaves from
        self.base_port = 0
        self.dest_ip = ""  # where it goes, and the only source of its answer
        self.dest_port = 0
        self.subject = None  # type: Any  # the owner's: a candidate pair, a TURN peer
        self.value = 0  # the owner's: the PRIORITY or LIFETIME sent
        self.nominating = False  # an ICE check carrying USE-CANDIDATE
        self.controlling = False  # the role an ICE check was sent in
        self.retransmit = True  # False: answer awaited, no more sends, no failure
        self.retries = 0  # the owner's count of fresh starts (401, 438, 300)
        self.sends = 0
        self.sent_ms = 0
        self.deadline = 0
        self._wait = 0


class Transactions:
    """A fixed table of transactions under one retransmission rule."""

    def __init__(self, size, rto_ms=500, rto_max_ms=0, max_sends=7, last_wait_ms=None):
        self.slots = [Transaction() for _ in range(size)]
        self.rto_ms = rto_ms
        self.rto_max_ms = rto_max_ms  # 0: no cap
        self.max_sends = max_sends
        self.last_wait_ms = 16 * rto_ms if last_wait_ms is None else last_wait_ms  # Rm = 16

    def open(self, kind, base_ip, base_port, dest_ip, dest_port, subject=None):
        """A free slot, filled in with a new transaction ID; None when full."""
        for t in self.slots:
            if not t.kind:
                t.kind = kind
                t.txid = stun.new_txid()
                t.base_ip = base_ip
                t.base_port = base_port
                t.dest_ip = dest_ip
                t.dest_port = dest_port
                t.subject = subject
                t.value = 0
                t.nominating = False
                t.controlling = False
                t.retransmit = True
                t.retries = 0
                t.sends = 0
                t._wait = self.rto_ms
                return t
        return None

    def renew(self, t):
        """Start `t` over as a new transaction (a fresh ID and send count), as
        after a 401 or 438 (RFC 8489 §9.2.5) or a 300 redirect."""
        t.txid = stun.new_txid()
        t.sends = 0
        t._wait = self.rto_ms
        t.retries += 1

    def sent(self, t, now):
        """Count one send of `t` and set when it is next due."""
        t.sends += 1
        t.sent_ms = now
        if t.sends >= self.max_sends:
            wait = self.last_wait_ms
        else:
            wait = t._wait
            t._wait = wait * 2
            if self.rto_max_ms and t._wait > self.rto_max_ms:
                t._wait = self.rto_max_ms
        t.deadline = ticks_add(now, wait)

    def should_resend(self, t):
        """At its deadline: True to send `t` again, False when it timed out."""
        return t.retransmit and t.sends < self.max_sends

    def run_due(self, now, resend, expire):
        """At `now`: resend(t) for each transaction due to be sent again, and
        expire(t) for each that timed out (the owner closes it)."""
        while True:
            t = self.due(now)
            if t is None:
                return
            if self.should_resend(t):
                resend(t)  # moves its deadline on
            else:
                expire(t)

    def find(self, txid):
        for t in self.slots:
            if t.kind and t.txid == txid:
                return t
        return None

    def due(self, now):
        """The first transaction whose deadline has passed, or None."""
        for t in self.slots:
            if t.kind and ticks_diff(now, t.deadline) >= 0:
                return t
        return None

    def next_deadline(self, deadline=None):
        """The earliest of `deadline` and every open transaction's deadline."""
        for t in self.slots:
            if t.kind:
                deadline = ticks_earliest(deadline, t.deadline)
        return deadline

    def count(self, kind, subject=None):
        """Open transactions of `kind` (about `subject`, when given)."""
        n = 0
        for t in self.slots:
            if t.kind == kind and (subject is None or t.subject is subject):
                n += 1
        return n

    def close(self, t):
        t.kind = 0
        t.subject = None

    def close_all(self, kind=0):
        """Forget every transaction (of `kind`, when given)."""
        for t in self.slots:
            if not kind or t.kind == kind:
                t.kind = 0
                t.subject = None


class Pacer:
    """New requests at one per `ta_ms` on average (RFC 8445 §14.2), with a
    burst of `burst` after a quiet spell so a lone check never waits: a GCRA."""

    def __init__(self, ta_ms, burst):
        self.ta_ms = ta_ms
        self.burst = burst
        self._tat = 0  # the theoretical arrival time of the next request
        self.next_at = 0  # when the next request may go

    def charge(self, now):
        """Count one request sent now."""
        ta = self.ta_ms
        if ticks_diff(now, self._tat) > 0:
            self._tat = now
        self._tat = ticks_add(self._tat, ta)
        self.next_at = ticks_add(self._tat, -(self.burst - 1) * ta)

    def ready(self, now):
        return ticks_diff(now, self.next_at) >= 0
