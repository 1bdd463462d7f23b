"""The agent's TURN allocations (ice.turn), owned in one place: each client
with the relayed candidate it gave the agent, the routing of what leaves a
relayed candidate, and the unwrapping of what arrives from a server.

Loaded only when a TURN server is added: a board that relays nothing never
imports TURN.
"""

from ice import turn
from ice.compat import const, ticks_earliest

# What `next_change` reports.
GRANTED = const(1)  # allocated: make its relayed candidate
GAVE_UP = const(2)  # never allocated: gathering is over for it
LOST = const(3)  # allocated once, gone now: withdraw the candidate, allocate again


class Relays:
    def __init__(self):
        self.clients = []
        # Per client: its relayed LocalCandidate, None while allocating,
        # False once handled as failed.
        self.candidates = []

    def add(self, client, now):
        client.start(now)
        self.clients.append(client)
        self.candidates.append(None)
        return client

    def from_server(self, local_ip, local_port, src_ip, src_port):
        """The client whose server sent to our base `local`, or None."""
        for client in self.clients:
            server, base = client.server, client.base
            if server[1] == src_port and base[1] == local_port and server[0] == src_ip and base[0] == local_ip:
                return client
        return None

    def relayed_at(self, ip, port):
        """The client of the relayed candidate at ip:port, or None."""
        for i in range(len(self.candidates)):
            cand = self.candidates[i]
            if cand and cand.port == port and cand.host == ip:
                return self.clients[i]
        return None

    def candidate_of(self, client):
        cand = self.candidates[self.clients.index(client)]
        return cand if cand else None

    def client_for(self, cand):
        for i in range(len(self.candidates)):
            if self.candidates[i] is cand:
                return self.clients[i]
        return None

    def next_change(self):
        """(GRANTED | GAVE_UP | LOST, client, lost candidate or None) for a
        client whose allocation changed since it was last looked at, or None."""
        for i in range(len(self.clients)):
            client = self.clients[i]
            cand = self.candidates[i]
            if client.state == turn.READY and cand is None:
                return GRANTED, client, None
            if client.state == turn.FAILED and cand is not False:
                self.candidates[i] = False
                return (GAVE_UP, client, None) if cand is None else (LOST, client, cand)
        return None

    def granted(self, client, cand):
        """The relayed candidate made of `client`'s allocation (None: none
        could be made; the client is closed and looked at no more)."""
        self.candidates[self.clients.index(client)] = cand if cand is not None else False

    def replace(self, client, now):
        """Allocate again, from the same base with the same settings."""
        i = self.clients.index(client)
        fresh = client.successor()
        fresh.start(now)
        self.clients[i] = fresh
        self.candidates[i] = None

    def allocating(self):
        for client in self.clients:
            if client.state == turn.ALLOCATING:
                return True
        return False

    def wrap(self, client, dst_ip, dst_port, data):
        """What leaves a relayed candidate, as the transmit tuple from the
        allocation's base to its server; None when it cannot go (counted)."""
        if client.state != turn.READY:
            return None
        wrapped = client.wrap(dst_ip, dst_port, data)
        if wrapped is None:
            return None
        return client.base[0], client.base[1], client.server[0], client.server[1], wrapped

    def handle_timeout(self, now):
        for client in self.clients:
            client.handle_timeout(now)

    def poll_transmit(self):
        for client in self.clients:
            out = client.poll_transmit()
            if out is not None:
                return out
        return None

    def next_deadline(self, deadline):
        for client in self.clients:
            at = client.poll_timeout()
            if at is not None:
                deadline = ticks_earliest(deadline, at)
        return deadline

    def close(self, now):
        for client in self.clients:
            client.close(now)

    def stats(self):
        return [
            {"server": c.server, "transport": c.transport, "state": c.state, "relayed": c.relayed,
             "error": c.error, "counters": dict(c.counters)}
            for c in self.clients
        ]
