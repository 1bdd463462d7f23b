"""Consent freshness (RFC 7675) and keepalives (RFC 8445 §11) for the
selected pair: when to check, when to send a keepalive, and how long the
peer has been silent. The agent sends what this asks for and reads
`silent_ms` in its state evaluation."""

from ice.compat import random_below, ticks_add, ticks_diff, ticks_earliest


class Consent:
    def __init__(self, interval_ms, timeout_ms, disconnected_after_ms, keepalive_ms):
        self.interval_ms = interval_ms  # 0: no consent checks (keepalives instead)
        self.timeout_ms = timeout_ms
        self.disconnected_after_ms = disconnected_after_ms
        self.keepalive_ms = keepalive_ms
        self.running = False
        self.ok_at = 0  # the last authenticated answer on the selected pair
        self._check_at = 0

    def start(self, now, checks=True):
        """A pair was selected: consent is fresh now. Without `checks` (an
        ICE-lite agent, or consent turned off) only keepalives go out."""
        self.running = checks and self.interval_ms > 0
        self.ok_at = now
        self._check_at = ticks_add(now, self._interval())

    def stop(self):
        self.running = False

    def confirmed(self, now):
        self.ok_at = now

    def silent_ms(self, now):
        return ticks_diff(now, self.ok_at)

    def check_due(self, now):
        """True (once) when the next consent check should go (§5.1)."""
        if not self.running or ticks_diff(now, self._check_at) < 0:
            return False
        self._check_at = ticks_add(now, self._interval())
        return True

    def keepalive_due(self, now, last_sent_ms):
        return not self.running and ticks_diff(now, last_sent_ms) >= self.keepalive_ms

    def next_deadline(self, last_sent_ms, disconnected):
        """The next moment consent or keepalives need the agent."""
        if not self.running:
            return ticks_add(last_sent_ms, self.keepalive_ms)
        at = ticks_add(self.ok_at, self.timeout_ms + 1)
        if not disconnected:
            at = ticks_earliest(at, ticks_add(self.ok_at, self.disconnected_after_ms + 1))
        return ticks_earliest(at, self._check_at)

    def _interval(self):
        # RFC 7675 §5.1: uniformly random in [0.8, 1.2] x the interval.
        base = self.interval_ms
        return base * 4 // 5 + random_below(base * 2 // 5 + 1) if base else 0

