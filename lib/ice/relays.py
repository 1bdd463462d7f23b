"""The agent's TURN allocations (ice.turn), owned in one place: each client
with the relayed candidate it gave the agent, the routing of what leaves a
relayed candidate, and the unwrapping of what arrives from a server.

Loaded only when a TURN server is added: a board that relays nothing never
imports TURN.
"""

from ice import turn
from ice.compat import ticks_earliest

class Relays:
    def __init__(self):
        self.clients = []
        # Per client: its relayed LocalCandidate, None while allocating,
        # False once handled as failed.
        self.candidates = []

    def add(self, client, now, start=True):
        if start:
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

    def service(self, agent):
        """Act on allocations granted or lost since the last look: a relayed
        candidate for the agent (RFC 8445 §5.1.1.2), or, when the server
        forgot one (it restarted, or stopped answering), the candidate and its
        pairs withdrawn and a new allocation from the same base. The new
        candidate is trickled; a session that used the old one loses consent
        and recovers by ICE restart (RFC 8445 §9)."""
        for i in range(len(self.clients)):
            client = self.clients[i]
            cand = self.candidates[i]
            if client.state == turn.READY and cand is None:
                self.candidates[i] = self._candidate(agent, client) or False
            elif client.state == turn.FAILED and cand is not False:
                self.candidates[i] = False
                if cand is None:  # never allocated: gathering is over for it
                    agent._gather_finished()
                    continue
                self._replace(agent, i, cand).start(agent._now)

    def lost(self, agent, client, reason):
        """The stream to `client`'s server closed or never opened (TCP, TLS):
        the allocation went with it. Its candidate is withdrawn and a
        successor waits, not started, for the driver's next connection;
        one that never allocated ends its gathering instead."""
        client.fail(reason)
        i = self.clients.index(client)
        cand = self.candidates[i]
        self.candidates[i] = False
        if cand is None:
            agent._gather_finished()
        elif cand:
            self._replace(agent, i, cand)

    def _replace(self, agent, i, cand):
        """Withdraw a lost allocation's candidate and its pairs; returns the
        client that allocates again in its place."""
        from ice.agent import CANDIDATE_REMOVED, Event

        agent.counters["relays_lost"] += 1
        agent.local_candidates = [c for c in agent.local_candidates if c is not cand]
        agent.checklist.remove_local(cand)
        agent._emit(Event(CANDIDATE_REMOVED, candidate=cand))
        fresh = self.clients[i] = self.clients[i].successor()
        self.candidates[i] = None
        return fresh

    def on_base(self, base_ip, base_port):
        """The client whose allocation is made from `base` (a stream's key)."""
        for client in self.clients:
            if client.base[1] == base_port and client.base[0] == base_ip:
                return client
        return None

    def _candidate(self, agent, client):
        """The relayed candidate of a granted allocation, trickled and paired;
        None (the allocation released) when the candidate table is full."""
        from ice.agent import CANDIDATE, Event

        count = sum(1 for c in agent.local_candidates if c.type == "relay")
        ip, port = client.relayed
        local_pref = (65535 if client.transport == "udp" else 32767) - count
        cand = agent._add_local("relay", ip, port, ip, port, local_pref,
                                related=client.mapped, server_ip=client.server[0])
        if cand is None:
            client.close(agent._now)
            return None
        self.candidates[self.clients.index(client)] = cand  # before pairing: permissions find it
        agent._emit(Event(CANDIDATE, candidate=cand))
        if client.transport == "udp" and client.mapped is not None:
            agent._add_srflx(client.base, client.mapped, client.server[0])
        if not agent._complete:
            for remote in agent.remote_candidates:
                agent._pair(cand, remote)
        agent._gather_finished()
        return cand

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
