"""Two sans-IO agents in one MicroPython process, connected over the
lockstep network and left running (consent checks every 4-6 s):

    micropython -m session SECONDS [session-only | NAME,NAME,...]

gc is disabled while the session runs, so gc.mem_alloc() deltas around a
call are what it allocated; gc.collect() (which still works) samples the
live heap every 100 ms of virtual time. Prints `CONNECTED_MS`, `PEAK_LIVE`,
`END_LIVE`, `STATES`, `ALLOC phase kind count heap-bytes requested-bytes`
per kind of call, `HEAP ms bytes`, then (without `session-only`) `FUNC name
checks calls-in-checks bytes-in-checks ticks calls-in-ticks bytes-in-ticks`
per function of TARGETS (or only those named): where the bytes go."""

import gc
import sys

import micropython

import lockstep
from ice import agent as agent_mod
from ice import checklist, consent, digest, stun, transaction

STEP_MS = 10
FUNC_SECONDS = 7  # connect, then one consent check each way (every 4-6 s)
ACTIVE = [0]  # 1 while handle_packet runs on a Binding request, 2 in a connected handle_timeout


def kind_of(data):
    if data[0] >= 4:
        return "data"
    t = (data[0] << 8) | data[1]
    return {0x0001: "request", 0x0101: "response", 0x0111: "error", 0x0011: "indication"}.get(t, "other")


class Meter:
    def __init__(self):
        self.stats = {}  # (phase, kind) -> [count, heap bytes, mem_total bytes]
        self.phase = "connect"

    def add(self, key, heap, total):
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = [0, 0, 0]
        s[0] += 1
        s[1] += heap
        s[2] += total


def session(meter, seconds, trace=None):
    net = lockstep.Net()
    gc.collect()
    base = gc.mem_alloc()
    a, b = lockstep.make_pair(net, 1, 1)
    net.deliver()
    agents = (a, b)

    def hook(agent, dip, dport, sip, sport, data):
        kind = kind_of(data)
        ACTIVE[0] = 1 if kind == "request" else 0
        h = gc.mem_alloc()
        t = micropython.mem_total()
        agent.handle_packet(net.now, dip, dport, sip, sport, data)
        dt = micropython.mem_total() - t
        dh = gc.mem_alloc() - h
        ACTIVE[0] = 0
        meter.add((meter.phase, kind), dh, dt)

    def tx_hook(agent):
        h = gc.mem_alloc()
        t = micropython.mem_total()
        out = agent.poll_transmit()
        if out is not None:
            meter.add((meter.phase, "poll_transmit"), gc.mem_alloc() - h, micropython.mem_total() - t)
        return out

    net.hook = hook
    net.tx_hook = tx_hook
    gc.disable()
    peak = 0
    connected_at = None
    for _ in range(seconds * 1000 // STEP_MS):
        net.now += STEP_MS
        for agent in agents:
            ACTIVE[0] = 2 if connected_at is not None else 0
            h = gc.mem_alloc()
            t = micropython.mem_total()
            agent.handle_timeout(net.now)
            dt = micropython.mem_total() - t
            dh = gc.mem_alloc() - h
            ACTIVE[0] = 0
            meter.add((meter.phase, "tick"), dh, dt)
            net.drain(agent)
        net.deliver()
        if connected_at is None and lockstep.connected(a) and lockstep.connected(b):
            connected_at = net.now
            meter.phase = "steady"
        if net.now % 100 == 0:
            gc.collect()
            live = gc.mem_alloc() - base
            peak = max(peak, live)
            if trace is not None:
                trace[net.now // 100] = live  # preallocated: the trace adds nothing to the heap
    gc.enable()
    gc.collect()
    return connected_at, peak, gc.mem_alloc() - base, a, b


# Where the bytes go: each wrapped alone (inclusive bytes per call).
TARGETS = [
    (agent_mod.Agent, "_handle_stun"), (agent_mod.Agent, "_on_request"), (agent_mod.Agent, "_on_response"),
    (agent_mod.Agent, "_tick"), (agent_mod.Agent, "_writer"), (agent_mod.Agent, "_find_remote"),
    (agent_mod.Agent, "_host_for_base"), (agent_mod.Agent, "_pair"), (agent_mod.Agent, "_respond_error"),
    (agent_mod.Agent, "_emit"), (agent_mod.Agent, "_set_state"), (agent_mod.Agent, "_expired"), (agent_mod.Agent, "_choose"),
    (agent_mod.Agent, "_send_next"), (agent_mod.Agent, "_nomination"), (agent_mod.Agent, "_liveness"),
    (agent_mod.Agent, "_evaluate"), (agent_mod.Agent, "_checks_failed"), (agent_mod.Agent, "_start_check"),
    (agent_mod.Agent, "_send_request"),
    (checklist.CheckList, "next_to_check"), (checklist.CheckList, "has_work"),
    (checklist.CheckList, "nomination"), (consent.Consent, "check_due"),
    (transaction.Transactions, "due"), (transaction.Transactions, "find"),
    (stun.Message, "parse"), (stun.Message, "check_fingerprint"), (stun.Message, "check_integrity"),
    (stun.Message, "has"), (stun.Message, "get"), (stun.Message, "get_u32"),
    (stun.Message, "unknown_required"), (stun.Writer, "start"), (stun.Writer, "start_reply"),
    (stun.Writer, "add_xor_address"), (stun.Writer, "add_integrity"), (stun.Writer, "add_fingerprint"),
    (digest, "stun_mac"), (digest, "fingerprint_into"),
]


for _owner, _name in TARGETS:  # a target renamed in the library fails here, at once
    getattr(_owner, _name)


def where_the_bytes_go(only=None):
    for owner, name in TARGETS:
        if only is not None and name not in only:
            continue
        original = getattr(owner, name)
        acc = [0, 0, 0, 0, 0]  # -, calls in checks, bytes in checks, calls in ticks, bytes in ticks

        def wrapper(*args, **kw):
            mode = ACTIVE[0]
            if not mode:
                return original(*args, **kw)
            h = gc.mem_alloc()
            r = original(*args, **kw)
            acc[2 * mode - 1] += 1
            acc[2 * mode] += gc.mem_alloc() - h
            return r

        setattr(owner, name, wrapper)
        m = Meter()
        session(m, FUNC_SECONDS)
        setattr(owner, name, original)
        checks = m.stats.get(("steady", "request"), [0, 0, 0])[0] + m.stats.get(("connect", "request"), [0, 0, 0])[0]
        ticks = m.stats.get(("steady", "tick"), [0, 0, 0])[0]
        print("FUNC", name, checks, acc[1], acc[2], ticks, acc[3], acc[4])


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    meter = Meter()
    trace = [0] * (seconds * 10 + 1)
    connected_at, peak, end, a, b = session(meter, seconds, trace)
    print("CONNECTED_MS", connected_at)
    print("PEAK_LIVE", peak)
    print("END_LIVE", end)
    print("STATES", a.state, b.state, a.counters["internal_errors"] + b.counters["internal_errors"])
    for (phase, kind), (n, heap, total) in sorted(meter.stats.items()):
        print("ALLOC", phase, kind, n, heap, total)
    for i in range(1, len(trace)):
        print("HEAP", i * 100, trace[i])
    if len(sys.argv) <= 2:
        where_the_bytes_go()
    elif sys.argv[2] != "session-only":
        where_the_bytes_go(sys.argv[2].split(","))


main()
