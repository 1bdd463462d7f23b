"""Two ICE agents meeting through the simulator, with trickled signalling.

Shared by the agent tests, tools/sim_matrix.py and tools/sim_demo.py; runs on both runtimes.
"""

from ice.agent import CANDIDATE, END_OF_CANDIDATES, Agent, Event
from ice.sdp import Candidate
from netsim import Simulator

STUN_IP = "203.0.113.1"
NAT_CHOICES = (None, "full-cone", "restricted", "port-restricted", "symmetric")
SIGNALLING_DELAY_MS = 30


def _relay(sim, peer, event, delay_ms):
    """What a signalling channel does: carry SDP text to the peer later."""
    if event.kind == CANDIDATE:
        line = event.candidate.to_sdp()
        sim.call_at(sim.now + delay_ms, lambda: _deliver(sim, peer, Candidate.from_sdp(line)))
    elif event.kind == END_OF_CANDIDATES:
        sim.call_at(sim.now + delay_ms, lambda: _deliver(sim, peer, None))


def _deliver(sim, peer, cand):
    peer.add_remote_candidate(cand)
    sim.kick(peer)


class Session:
    """Agent `a` (controlling) on site 1, agent `b` on site 2."""

    def __init__(self, nat_a=None, nat_b=None, seed=1, config_a=None, config_b=None,
                 controlling_b=False, lite_b=False, use_stun=True, loss=0.0,
                 relay_a=True, relay_b=True, signal_creds=True, delay_ms=10, **link):
        self.sim = sim = Simulator(seed)
        sim.add_stun_server(STUN_IP)
        self.nat_a = sim.add_nat_type("198.51.100.1", nat_a) if nat_a else None
        self.nat_b = sim.add_nat_type("198.51.100.2", nat_b) if nat_b else None
        ip_a = "192.168.1.2" if nat_a else "198.51.100.10"
        ip_b = "192.168.2.2" if nat_b else "198.51.100.20"
        # `link`: jitter_ms, duplicate, reorder for both access links.
        self.host_a = sim.add_host(ip_a, nat=self.nat_a, delay_ms=delay_ms, loss=loss, **link)
        self.host_b = sim.add_host(ip_b, nat=self.nat_b, delay_ms=delay_ms, loss=loss, **link)
        self.a = Agent(True, config_a)
        self.b = Agent(controlling_b, config_b, lite=lite_b)
        self.events_a = []  # (time, Event)
        self.events_b = []
        self.data_a = []  # application payloads received
        self.data_b = []
        self.connected_at = None
        self._attach(self.host_a, self.a, self.b, self.events_a, self.data_a, relay_a, 5000)
        self._attach(self.host_b, self.b, self.a, self.events_b, self.data_b, relay_b, 6000)
        if signal_creds:
            self.exchange_credentials()
        for host, agent, port in ((self.host_a, self.a, 5000), (self.host_b, self.b, 6000)):
            agent.add_host_candidate(host.ip, port)
            if use_stun and not agent.lite:
                agent.add_stun_server(STUN_IP)
            sim.kick(agent)

    def _attach(self, host, agent, peer, log, data, relay, port):
        sim = self.sim

        def on_event(event):
            log.append((sim.now, event))
            if relay:
                _relay(sim, peer, event, SIGNALLING_DELAY_MS)

        host.attach(agent, on_event=on_event, ports=(port,), on_data=data.append)

    def restart(self):
        """ICE restart on both sides (RFC 8445 §9): new credentials over
        signalling; each agent's candidates trickle again."""
        for agent in (self.a, self.b):
            agent.restart()
        self.exchange_credentials()
        for agent, peer in ((self.a, self.b), (self.b, self.a)):
            for cand in agent.local_candidates:
                if cand.type != "prflx":
                    _relay(self.sim, peer, Event(CANDIDATE, candidate=cand), SIGNALLING_DELAY_MS)
            _relay(self.sim, peer, Event(END_OF_CANDIDATES), SIGNALLING_DELAY_MS)

    def exchange_credentials(self):
        a, b = self.a, self.b
        a.set_remote_credentials(b.local_ufrag, b.local_pwd, lite=b.lite)
        b.set_remote_credentials(a.local_ufrag, a.local_pwd, lite=a.lite)
        self.sim.kick(a)
        self.sim.kick(b)

    def both_connected(self):
        for agent in (self.a, self.b):
            if agent.selected_pair is None or agent.state not in ("connected", "completed"):
                return False
        return True

    def connect(self, timeout_ms=20000):
        start = self.sim.now
        ok = self.sim.run_until(self.both_connected, timeout_ms)
        if ok:
            self.connected_at = self.sim.now - start
        return ok

    def both_failed(self):
        return self.a.state == "failed" and self.b.state == "failed"

    def send(self, sender, payload):
        """Send application data over the selected pair through the network."""
        self.sim.send(sender, sender.send(payload))


def relayed_behind_a_dead_address(s):
    """For a Session made with relay_b=False: b's socket signalled to a as a
    relayed candidate, below an unreachable host address of b's. a's first
    valid pair is then the relayed one, and the better pair keeps nomination
    waiting for its patience. Returns (dead, relayed) candidates."""
    a = s.a
    dead = Candidate(foundation="h1", priority=2130706431, host=s.host_b.ip, port=6999, type="host")
    relayed = Candidate(foundation="r1", priority=16777215, host=s.host_b.ip, port=6000, type="relay",
                        related_address="203.0.113.7", related_port=3478)
    a.add_remote_candidate(dead)
    a.add_remote_candidate(relayed)
    a.add_remote_candidate(None)
    s.sim.kick(a)
    return dead, relayed


def direct_path_exists(nat_a, nat_b):
    """Without a relay, a symmetric NAT meets only peers whose filtering lets
    a new source port in: none, full cone or address-restricted (RFC 4787)."""
    hard = ("port-restricted", "symmetric")
    return not ((nat_a == "symmetric" and nat_b in hard) or (nat_b == "symmetric" and nat_a in hard))


def best_valid_is_selected(agent):
    """The selected pair is the highest-priority valid pair."""
    best = None
    for pair in agent.pairs:
        if pair.valid and (best is None or pair.priority > best.priority):
            best = pair
    return best is agent.selected_pair
