"""The check list (RFC 8445 §6.1.2): candidate pairs, each owning its check
state and its nomination state, kept in priority order, with the triggered
check queue, freezing by foundation and the controlling agent's choice of
when to nominate.

Theory of operation. A pair changes check state only through
`Pair.apply(event)`, which reads `_CHECK_NEXT`, and nomination state only
through `Pair.nominate(event)`, which reads `_NOMINATION_NEXT`; both tables
are below and are tested on their own. The agent decides which event
happens (a check was sent, answered, timed out; a request came in); the
pair decides what that means for it.
"""

from ice.compat import const, ticks_add, ticks_diff

_MIB = const(1 << 20)

# Check states (RFC 8445 §6.1.2.6).
FROZEN = const(0)
WAITING = const(1)
IN_PROGRESS = const(2)
SUCCEEDED = const(3)
FAILED = const(4)
PAIR_STATES = ("frozen", "waiting", "in-progress", "succeeded", "failed")

# Check events.
UNFREEZE = const(0)  # its foundation may be checked now (§6.1.4.2, §7.2.5.3.3)
TRIGGER = const(1)  # a check from the peer arrived on it (§7.3.1.4)
START = const(2)  # a check (or a nominating check) was sent
SUCCEED = const(3)  # a check succeeded, or it became a valid pair (§7.2.5.3.2)
FAIL = const(4)  # a check timed out or was refused (§7.2.5.2)

# The next check state: row = state, column = event.
# fmt: off
_CHECK_NEXT = bytes((
    # UNFREEZE    TRIGGER    START        SUCCEED    FAIL
    WAITING,     WAITING,   IN_PROGRESS, SUCCEEDED, FAILED,  # FROZEN
    WAITING,     WAITING,   IN_PROGRESS, SUCCEEDED, FAILED,  # WAITING
    IN_PROGRESS, WAITING,   IN_PROGRESS, SUCCEEDED, FAILED,  # IN_PROGRESS: a trigger cancels, checks again
    SUCCEEDED,   SUCCEEDED, SUCCEEDED,   SUCCEEDED, FAILED,  # SUCCEEDED: stays valid while nominated
    FAILED,      WAITING,   IN_PROGRESS, SUCCEEDED, FAILED,  # FAILED: a trigger checks again
))
# fmt: on

# Nomination states.
NOT_NOMINATED = const(0)
NOMINATING = const(1)  # controlling: USE-CANDIDATE to go out; controlled: received, own check pending
NOMINATED = const(2)

# Nomination events.
WANT = const(0)  # controlling: chosen; controlled: USE-CANDIDATE on a pair not yet succeeded
CONFIRM = const(1)  # the nominating check succeeded, or USE-CANDIDATE on a succeeded pair
DROP = const(2)  # the nominating check failed
# fmt: off
_NOMINATION_NEXT = bytes((
    # WANT        CONFIRM    DROP
    NOMINATING,  NOMINATED, NOT_NOMINATED,  # NOT_NOMINATED
    NOMINATING,  NOMINATED, NOT_NOMINATED,  # NOMINATING
    NOMINATED,   NOMINATED, NOMINATED,      # NOMINATED: stays until the check list restarts
))
# fmt: on


def pair_priority(controlling_prio, controlled_prio):
    """RFC 8445 §6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)."""
    g, d = controlling_prio, controlled_prio
    return (min(g, d) << 32) + 2 * max(g, d) + (1 if g > d else 0)


def relayed(pair):
    return pair.local.type == "relay" or pair.remote.type == "relay"


class Pair:
    """A candidate pair: its check and nomination states and its statistics."""

    def __init__(self, local, remote, priority):
        self.local = local
        self.remote = remote
        self.priority = priority
        self.foundation = local.foundation + ":" + remote.foundation
        self.state = FROZEN
        self.nomination = NOT_NOMINATED
        self.valid = False  # in the valid list (§7.2.5.3.2)
        self.valid_pair = None  # type: Pair | None  # what its successful check validated
        self.rtt_ms = None  # type: int | None
        self.first_check_ms = None  # type: int | None  # when its first check left
        self.last_sent_ms = 0
        self.requests_sent = 0
        self.requests_received = 0
        self.responses_sent = 0
        self.responses_received = 0
        # Data bytes as whole MiB plus the rest below 1 MiB: no count grows
        # into a heap integer (2^30 and more on 32-bit ports) per datagram.
        self.sent_mib = self.sent_rest = 0
        self.received_mib = self.received_rest = 0

    def apply(self, event):
        """Move the check state on `event`; returns the new state."""
        self.state = _CHECK_NEXT[5 * self.state + event]
        return self.state

    def nominate(self, event):
        self.nomination = _NOMINATION_NEXT[3 * self.nomination + event]
        return self.nomination

    def check_started(self, now):
        """A check (or a nominating check) on it was sent."""
        self.apply(START)
        if self.first_check_ms is None:
            self.first_check_ms = now

    def succeed(self, valid_pair, rtt_ms):
        """Its check succeeded and validated `valid_pair` (itself or the
        pair of its peer-reflexive local candidate, §7.2.5.3.2)."""
        self.apply(SUCCEED)
        self.valid_pair = valid_pair
        if rtt_ms is not None:
            self.rtt_ms = rtt_ms
        if valid_pair is not self:
            valid_pair.apply(SUCCEED)
            valid_pair.rtt_ms = self.rtt_ms
        valid_pair.valid = True

    def fail(self):
        """A check failed: out of the valid list, any nomination dropped."""
        self.apply(FAIL)
        self.valid = False
        self.nominate(DROP)

    def count_sent(self, size):
        rest = self.sent_rest + size
        if rest >= _MIB:
            self.sent_mib += rest >> 20
            rest &= _MIB - 1
        self.sent_rest = rest

    def count_received(self, size):
        rest = self.received_rest + size
        if rest >= _MIB:
            self.received_mib += rest >> 20
            rest &= _MIB - 1
        self.received_rest = rest

    @property
    def bytes_sent(self):
        return (self.sent_mib << 20) + self.sent_rest

    @property
    def bytes_received(self):
        return (self.received_mib << 20) + self.received_rest

    @property
    def nominated(self):
        return self.nomination == NOMINATED

    def stats(self):
        """Named statistics, as status pages show them."""
        local, remote = self.local, self.remote
        return {
            "local_type": local.type, "local_host": local.host, "local_port": local.port,
            "remote_type": remote.type, "remote_host": remote.host, "remote_port": remote.port,
            "state": PAIR_STATES[self.state], "nominated": self.nomination == NOMINATED,
            "valid": self.valid, "rtt_ms": self.rtt_ms,
            "requests_sent": self.requests_sent, "requests_received": self.requests_received,
            "responses_sent": self.responses_sent, "responses_received": self.responses_received,
            "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
        }

    def __repr__(self):
        return "<Pair %s %s:%d -> %s %s:%d %s%s>" % (
            self.local.type, self.local.host, self.local.port,
            self.remote.type, self.remote.host, self.remote.port,
            PAIR_STATES[self.state], " nominated" if self.nomination == NOMINATED else "",
        )


def _sort_key(pair):
    return -pair.priority


class CheckList:
    """Pairs in priority order (highest first), at most `max_pairs`, and the
    triggered check queue (§6.1.4.1)."""

    def __init__(self, max_pairs):
        self.max_pairs = max_pairs
        self.pairs = []
        self.triggered = []
        self.full = 0  # pairs not formed: the list was full of better ones

    def find(self, local, remote):
        for pair in self.pairs:
            if pair.local is local and pair.remote is remote:
                return pair
        return None

    def add(self, local, remote, priority):
        """Form a pair (§6.1.2.2), or return the one that exists; None when
        the list is full of better or busy pairs (§6.1.2.5)."""
        pair = self.find(local, remote)
        if pair is not None:
            return pair
        pair = Pair(local, remote, priority)
        if len(self.pairs) >= self.max_pairs:
            lowest = self.pairs[-1]
            if lowest.priority >= priority or lowest.state in (IN_PROGRESS, SUCCEEDED):
                self.full += 1
                return None
            self.remove(lowest)
        # RFC 8838 §10: Waiting, unless its foundation is already being checked.
        if not self.foundation_busy(pair.foundation):
            pair.apply(UNFREEZE)
        at = 0
        while at < len(self.pairs) and self.pairs[at].priority >= priority:
            at += 1
        self.pairs.insert(at, pair)
        return pair

    def remove(self, pair):
        self.pairs.remove(pair)
        if pair in self.triggered:
            self.triggered.remove(pair)

    def remove_local(self, cand):
        """Drop every pair of a local candidate that is gone."""
        self.pairs = [p for p in self.pairs if p.local is not cand]
        self.triggered = [p for p in self.triggered if p.local is not cand]

    def clear(self):
        self.pairs = []
        self.triggered = []

    def reprioritize(self, priority_of):
        """New priorities (a role switch, a prflx remote now signalled)."""
        for pair in self.pairs:
            pair.priority = priority_of(pair.local, pair.remote)
        self.pairs.sort(key=_sort_key)

    def trigger(self, pair, front=False):
        """Queue a triggered check (§7.3.1.4); `front` for a nomination or a
        role-conflict retry, which must not wait behind others."""
        if pair in self.triggered:
            self.triggered.remove(pair)
        if front:
            self.triggered.insert(0, pair)
        else:
            self.triggered.append(pair)

    def next_to_check(self):
        """Triggered queue first, then the best Waiting pair, unfreezing one
        pair per idle foundation when none waits (§6.1.4.2)."""
        while self.triggered:
            pair = self.triggered.pop(0)
            if pair.state != FAILED or pair.nomination == NOMINATING:
                return pair
        for pair in self.pairs:
            if pair.state == WAITING:
                return pair
        chosen = None
        for pair in self.pairs:
            if pair.state == FROZEN and not self.foundation_busy(pair.foundation):
                pair.apply(UNFREEZE)
                chosen = chosen or pair
        return chosen

    def has_work(self):
        if self.triggered:
            return True
        for pair in self.pairs:
            if pair.state == FROZEN or pair.state == WAITING:
                return True
        return False

    def foundation_busy(self, foundation):
        """A pair of this foundation is in progress, or waiting to be."""
        for pair in self.pairs:
            if pair.foundation == foundation and (pair.state == IN_PROGRESS or pair.state == WAITING):
                return True
        return False

    def unfreeze(self, foundation):
        """§7.2.5.3.3: a success unfreezes the pairs of its foundation."""
        for pair in self.pairs:
            if pair.state == FROZEN and pair.foundation == foundation:
                pair.apply(UNFREEZE)

    def best_valid(self):
        for pair in self.pairs:  # kept in priority order
            if pair.valid and pair.state == SUCCEEDED:
                return pair
        return None

    def any_succeeded(self):
        for pair in self.pairs:
            if pair.state == SUCCEEDED:
                return True
        return False

    def receiving_from(self, base_ip, base_port, src_ip, src_port):
        """The pair from our base to the remote at src that may carry data to
        us: a valid one, or one whose peer has passed an authenticated check
        (it may send as soon as its own check succeeded, before ours did,
        RFC 8445 §12.1); None for any other source."""
        for pair in self.pairs:
            if pair.valid or pair.requests_received:
                remote, local = pair.remote, pair.local
                if remote.port == src_port and local.base_port == base_port and \
                        remote.host == src_ip and local.base_ip == base_ip:
                    return pair
        return None

    def complete(self):
        """§8.1.2: a pair is nominated; what has not started is dropped."""
        self.pairs = [p for p in self.pairs if p.state != FROZEN and p.state != WAITING]
        self.triggered = []

    def nomination(self, now, first_valid_at, ta_ms, rto_ms):
        """Regular nomination (§8.1.1): (pair, None) when the best valid pair
        should be nominated now, (None, when) to look again at `when`, or
        (None, None) with nothing to decide.

        Data already flows on the best valid pair (§12.1), so nomination can
        wait for better pairs as long as they could still answer: one not
        checked yet, or checked less than its patience ago, holds it back.
        Patience comes from the round trip the best pair showed: three of them
        and a pacing step, or, when the best pair is relayed (a direct path may
        show up only as a peer-reflexive pair), one retransmission (RTO) and two
        round trips. A frozen pair behind a pair of its own foundation is
        judged by that pair. Whatever comes, the wait ends two RTOs and four
        round trips after the first valid pair."""
        best = self.best_valid()
        if best is None:
            return None, None
        rtt = best.rtt_ms or 0
        patience = rto_ms + 2 * rtt if relayed(best) else 3 * rtt + ta_ms
        give_up_at = ticks_add(first_valid_at, 2 * rto_ms + 4 * rtt)
        if ticks_diff(now, give_up_at) >= 0:
            return best, None
        wake = None
        for pair in self.pairs:
            if pair.priority <= best.priority:
                break
            state = pair.state
            if state == WAITING or state == FROZEN and not self.foundation_busy(pair.foundation):
                return None, give_up_at  # not checked yet: checks will wake us
            if state == IN_PROGRESS:
                if pair.first_check_ms is None:
                    return None, give_up_at
                at = ticks_add(pair.first_check_ms, patience)
                if ticks_diff(at, now) > 0 and (wake is None or ticks_diff(at, wake) > 0):
                    wake = at
        if wake is None:
            return best, None
        return None, wake if ticks_diff(wake, give_up_at) < 0 else give_up_at
