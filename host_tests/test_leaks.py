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
    gc.collect()
    if tracemalloc is not None:
        return tracemalloc.get_traced_memory()[0]
    return gc.mem_alloc()


def one_session(now):
    """Two agents connect on 10.0.0.1 <-> 10.0.0.2 and close; returns the
    clock it ended at."""
    a = Agent(True, _CONFIG)
    b = Agent(False, _CONFIG)
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    a.add_remote_candidate(b.add_host_candidate("10.0.0.2", 5000))
    b.add_remote_candidate(a.add_host_candidate("10.0.0.1", 5000))
    agents = ((a, b), (b, a))
    for _ in range(40):
        for agent, _ in agents:
            agent.handle_timeout(now)
        moved = False
        for agent, peer in agents:
            while True:
                t = agent.poll_transmit()
                if t is None:
                    break
                moved = True
                peer.handle_packet(now, t[2], t[3], t[0], t[1], bytes(t[4]))
        while a.poll_event() or b.poll_event():
            pass
        if a.state in ("connected", "completed") and b.state in ("connected", "completed") and not moved:
            break
        now += 10
    assert a.selected_pair is not None and b.selected_pair is not None
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
