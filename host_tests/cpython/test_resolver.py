"""Server names through our stub resolver (ice.resolver, RFC 1035 §7)
against a real DNS server (dnsmasq, conftest.py's dns_server) and coturn:
a turns: server reached by name on CPython and on the MicroPython unix
ports, a name that does not exist failing with its reason, and a DNS server
that never answers holding back only that server's candidates."""

import asyncio
import socket

import pytest

from ice import aio
from ice.resolver import resolve
from peers import run
from test_turn_tls import LOOPBACK, RUNTIME_IDS, RUNTIMES, allocations, relay_trickles_while_gathering, turns


def name_of(dns_server):
    [name] = dns_server.records
    return name


def test_names_resolve_through_the_given_server(dns_server):
    async def main():
        servers = [dns_server.address]
        assert await resolve(name_of(dns_server), 3478, dns_servers=servers) == "127.0.0.1"
        assert await resolve(name_of(dns_server).upper() + ".", 3478, dns_servers=servers) == "127.0.0.1"
        assert await resolve("192.0.2.1", 3478, dns_servers=servers) == "192.0.2.1"
        assert await resolve("localhost", 3478, dns_servers=servers) == "127.0.0.1"  # never asked: RFC 6761 §6.3
        with pytest.raises(OSError, match="cannot resolve 'nowhere.ice.test'"):
            await resolve("nowhere.ice.test", 3478, dns_servers=servers)

    run(main())


@pytest.mark.parametrize("runtime", RUNTIMES, ids=RUNTIME_IDS)
def test_a_turns_server_by_name_allocates(turn_server, dns_server, tmp_path, runtime):
    """turns:turn.ice.test: the name through dnsmasq, the certificate
    checked against the name."""
    servers = turns(turn_server, host=name_of(dns_server))
    found = run(allocations(runtime, tmp_path, servers, turn_server.ca.pem, dns_servers=[dns_server.address]))
    assert found == [["ready", None]], found


@pytest.mark.parametrize("runtime", RUNTIMES, ids=RUNTIME_IDS)
def test_a_name_that_does_not_resolve_fails_naming_the_server(turn_server, dns_server, tmp_path, runtime):
    servers = [{"urls": "turn:nowhere.ice.test:%d" % turn_server.port, "username": turn_server.username,
                "credential": turn_server.password}] + turns(turn_server, host=name_of(dns_server))
    found = run(allocations(runtime, tmp_path, servers, turn_server.ca.pem, dns_servers=[dns_server.address]))
    [[state, error], second] = found
    assert state == "failed" and error.startswith("TURN server nowhere.ice.test:%d: cannot resolve"
                                                  % turn_server.port), found
    assert second == ["ready", None], found


def test_a_silent_dns_server_holds_back_only_its_own_servers_candidates(turn_server):
    """A DNS server that never answers: the host candidates and the relayed
    one of a server given by address trickle at once; the named server's
    gathering ends after the resolver's retries, with the reason."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))

    async def main():
        seen = []
        servers = [{"urls": "turn:turn.ice.test:%d" % turn_server.port, "username": turn_server.username,
                    "credential": turn_server.password},
                   {"urls": "turn:127.0.0.1:%d" % turn_server.port, "username": turn_server.username,
                    "credential": turn_server.password}]
        conn = aio.Connection(True, ice_servers=servers, dns_servers=[silent.getsockname()],
                              on_candidate=seen.append, **LOOPBACK)
        gathering = await relay_trickles_while_gathering(conn, seen)
        await asyncio.wait_for(gathering, 10)  # 1 + 2 + 2 s of tries
        named = conn.stats()["turn"][0]
        assert named["state"] == "failed" and "no answer from 127.0.0.1:%d" % silent.getsockname()[1] \
            in named["error"], named
        assert seen[-1] is None
        await conn.close()

    try:
        run(main(), timeout=30)
    finally:
        silent.close()

