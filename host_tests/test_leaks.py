"""Leaks: a camera that runs for months connects and closes sessions over and
over; after gc.collect() its heap must not grow. 1000 cycles of two agents
meeting over an in-memory wire. Runs on both runtimes (heap: gc.mem_alloc on
MicroPython, tracemalloc on CPython)."""

import gc

from ice.agent import Agent, Config

CYCLES = 1000
_CONFIG = Config(max_local=2, max_remote=2, max_pairs=4, max_transactions=4, max_events=8, transmit_slots=4)

try:
    import tracemalloc
except ImportError:
    tracemalloc = None


def heap_in_use():
    """Bytes held: on CPython, by blocks allocated in lib/ice (the test's
    own bookkeeping and tracemalloc's do not count)."""
    gc.collect()
    if tracemalloc is not None:
        held = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/lib/ice/*")])
        return sum(stat.size for stat in held.statistics("filename"))
    return gc.mem_alloc()


def connect(now, exchange=None):
    """Two agents connect on 10.0.0.1 <-> 10.0.0.2; returns (a, b, clock).
    `exchange(agent, peer, now, datagram)` delivers each datagram."""
    a = Agent(True, _CONFIG)
    b = Agent(False, _CONFIG)
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    a.add_remote_candidate(b.add_host_candidate("10.0.0.2", 5000))
    b.add_remote_candidate(a.add_host_candidate("10.0.0.1", 5000))
    for _ in range(40):
        moved = step(a, b, now, exchange)
        if a.state in ("connected", "completed") and b.state in ("connected", "completed") and not moved:
            break
        now += 10
    assert a.selected_pair is not None and b.selected_pair is not None
    return a, b, now


def step(a, b, now, exchange=None):
    """One tick of both agents and every datagram delivered; True if any moved."""
    moved = False
    for agent in (a, b):
        agent.handle_timeout(now)
    for agent, peer in ((a, b), (b, a)):
        while True:
            t = agent.poll_transmit()
            if t is None:
                break
            moved = True
            data = bytes(t[4])
            if exchange is None:
                peer.handle_packet(now, t[2], t[3], t[0], t[1], data)
            else:
                exchange(peer, now, t, data)
    while a.poll_event() or b.poll_event():
        pass
    return moved


def one_session(now):
    """Connect and close; returns the clock it ended at."""
    a, b, now = connect(now)
    a.close()
    b.close()
    return now


def test_1000_connect_close_cycles_do_not_grow_the_heap():
    if tracemalloc is not None:
        tracemalloc.start()
    try:
        now = 0
        for _ in range(50):  # warm up: interned strings, caches, first-use tables
            now = one_session(now)
        start = heap_in_use()
        samples = []
        for cycle in range(CYCLES):
            now = one_session(now)
            if cycle % 250 == 249:
                samples.append(heap_in_use() - start)
        print("heap growth after 250/500/750/1000 cycles: %s bytes" % samples)
        # Zero growth; a few hundred bytes of slack for the allocator's
        # bookkeeping (and, on CPython, tracemalloc's own frames).
        assert max(samples) <= 512, samples
        assert samples[-1] <= samples[0] + 256, samples
    finally:
        if tracemalloc is not None:
            tracemalloc.stop()


def test_handled_check_and_idle_tick_allocation_budget():
    """Issue 7's budget on MicroPython: at most 512 bytes allocated while an
    agent handles a connectivity check (parse, authenticate, answer), and
    nothing on a tick with nothing due. gc is off while measuring, so
    gc.mem_alloc() deltas are allocations. On CPython the same consent
    checks run and are counted; only MicroPython has the allocation meter."""
    is_mp = not hasattr(gc, "get_objects")
    checks = []  # bytes allocated per Binding request handled

    def exchange(agent, now, t, data):
        is_request = data[0] == 0 and data[1] == 1
        gc.disable()
        before = gc.mem_alloc() if is_mp else 0
        agent.handle_packet(now, t[2], t[3], t[0], t[1], data)
        used = gc.mem_alloc() - before if is_mp else 0
        gc.enable()
        if is_request:
            checks.append(used)

    a, b, now = connect(0)
    for _ in range(5):  # warm up the caches (keys, packed addresses)
        step(a, b, now, exchange)
        now += 10
    del checks[:]
    idle = []
    for _ in range(1200):  # 12 s: two or more consent checks each way (§9 of RFC 7675)
        gc.disable()
        before = gc.mem_alloc() if is_mp else 0
        a.handle_timeout(now)
        used = gc.mem_alloc() - before if is_mp else 0
        gc.enable()
        if a._tx_count == 0:
            idle.append(used)
        step(a, b, now, exchange)
        now += 10
    assert a.state in ("connected", "completed") and b.state in ("connected", "completed")
    assert len(checks) >= 4, checks
    assert len(idle) > 1000
    print("bytes per handled check: max %d; idle ticks: max %d" % (max(checks), max(idle)))
    assert max(checks) <= 512, checks
    assert max(idle) == 0, max(idle)
    a.close()
    b.close()
