"""Two or more sans-IO agents on an in-process lockstep network (zero
latency), on MicroPython and CPython: what is sent in one round is
delivered in the next call to deliver()."""

from ice.agent import COMPLETED, CONNECTED, Agent
from ice.sdp import Candidate


class Net:
    def __init__(self):
        self.now = 0
        self.queue = []
        self.owners = {}
        # hook(agent, dst_ip, dst_port, src_ip, src_port, data) instead of handle_packet
        self.hook = None
        self.tx_hook = None  # tx_hook(agent) -> out, instead of agent.poll_transmit()
        self.data = 0  # application payloads delivered

    def attach(self, agent, ip, port):
        self.owners[(ip, port)] = agent

    def drain(self, agent):
        q = self.queue
        while True:
            out = agent.poll_transmit() if self.tx_hook is None else self.tx_hook(agent)
            if out is None:
                break
            q.append((out[2], out[3], out[0], out[1], bytes(out[4])))
        while agent.poll_event() is not None:
            pass

    def deliver(self):
        n = 0
        while self.queue:
            q = self.queue
            self.queue = []
            for dip, dport, sip, sport, data in q:
                agent = self.owners.get((dip, dport))
                if agent is None:
                    continue
                if self.hook is None:
                    if agent.handle_packet(self.now, dip, dport, sip, sport, data) is not None:
                        self.data += 1
                else:
                    self.hook(agent, dip, dport, sip, sport, data)
                self.drain(agent)
                n += 1
        return n


def connected(agent):
    return agent.state == CONNECTED or agent.state == COMPLETED


def make_pair(net, i, k=1, config=None):
    """Agents a (controlling) and b with k host candidates each, on
    distinct addresses, credentials and candidates signalled both ways."""
    a = Agent(True, config)
    b = Agent(False, config)
    for j in range(k):
        ip_a = "10.%d.%d.%d" % (j, (i >> 8) & 255, i & 255)
        ip_b = "10.%d.%d.%d" % (100 + j, (i >> 8) & 255, i & 255)
        a.add_host_candidate(ip_a, 5000)
        net.attach(a, ip_a, 5000)
        b.add_host_candidate(ip_b, 6000)
        net.attach(b, ip_b, 6000)
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    for x, y in ((a, b), (b, a)):
        for c in y.local_candidates:
            x.add_remote_candidate(Candidate.from_sdp(c.to_sdp()))
        x.add_remote_candidate(None)
        net.drain(x)
    return a, b
