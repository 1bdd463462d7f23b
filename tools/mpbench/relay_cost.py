"""What one relayed candidate costs, over UDP, TCP or TLS: the time from
gather_candidates() to the relayed candidate, and the heap a gathered
relay-only Connection keeps (its sockets or stream, the TURN client, the
TLS session):

    micropython -m relay_cost URI USERNAME PASSWORD CA_FILE ROUNDS [ADDRESS [DNS_SERVER]]
    python tools/mpbench/relay_cost.py ...         (CPython: times only)

URI is a turn: or turns: URI (tools/bench.py runs it against a private
coturn on loopback, tools/netlab_bench.py across the NAT lab); CA_FILE the
CA of a turns: server; ADDRESS the local address to gather on (default
127.0.0.1); DNS_SERVER the server that resolves the URI's name. The modules a relay
loads are imported, and the TLS context made, first. Prints `HEAP bytes`
(the first round's Connection, gathered; -1 on CPython) and `RELAY ms` per
round, each a new relay-only Connection gathered and closed."""

import gc
import sys

import asyncio
from ice import aio, netio, relays, servers, turn  # noqa: F401 (loaded before the heap is measured)
from ice.compat import ticks_diff, ticks_ms


def live():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1


async def one(uri, username, password, tls, measure, address, dns_servers):
    base = live() if measure else -1
    conn = aio.Connection(True, ice_servers=[{"urls": uri, "username": username, "credential": password}],
                          turn_ssl=tls, transport_policy="relay", include_loopback=True, use_ipv6=False,
                          interfaces=[("if0", address)], dns_servers=dns_servers)
    started = ticks_ms()
    await conn.gather_candidates()
    took = ticks_diff(ticks_ms(), started)
    if measure:
        print("HEAP", live() - base if base >= 0 else -1)
    relayed = [c for c in conn.local_candidates if c.type == "relay"]
    await conn.close()
    if not relayed:
        print("no relayed candidate: %s" % conn.stats()["turn"])
        sys.exit(1)
    return took


async def main():
    uri, username, password, ca_file, rounds = sys.argv[1:6]
    address = sys.argv[6] if len(sys.argv) > 6 else "127.0.0.1"
    dns_servers = sys.argv[7:8] or None
    tls = None
    if uri.startswith("turns:"):
        with open(ca_file, "rb") as f:
            tls = netio.tls_context(cadata=f.read())
    for i in range(int(rounds)):
        print("RELAY", await one(uri, username, password, tls, i == 0, address, dns_servers))


asyncio.run(main())
