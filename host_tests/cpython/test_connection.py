"""ice.aio.Connection on real sockets against real peers: itself, aioice
(an independent implementation from PyPI), coturn (Debian's TURN server)
and a Connection running under the MicroPython unix port. CPython only."""

import asyncio
import socket
import time
import uuid

import aioice
import pytest

from ice import aio
from ice.agent import Config
from peers import MICROPYTHONS, MicroPythonPeer, exchange, ping_pong, relay_kwargs, run
from testca import TestCA
from turnserver import TurnServer

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


def test_connects_to_itself_and_moves_data():
    async def main():
        a = aio.Connection(True, include_loopback=True)
        b = aio.Connection(False, include_loopback=True)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        assert {c.type for c in a.local_candidates} == {"host"}
        assert any(c.host == "127.0.0.1" for c in a.local_candidates)
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        assert a.selected_pair.local.type == "host" and b.selected_pair.remote.type == "host"
        await ping_pong(a, b)
        await a.close()
        await b.close()
        assert a.state == "closed"
        with pytest.raises(ConnectionError):
            await a.send(b"late")

    run(main())


def test_ipv6_host_candidates_connect():
    async def main():
        a = aio.Connection(True, include_loopback=True, include_addresses=["::1"])
        b = aio.Connection(False, include_loopback=True, include_addresses=["::1"])
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        assert [c.host for c in a.local_candidates] == ["::1"]
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        assert a.selected_pair.remote.host == "::1"
        await ping_pong(a, b, rounds=1)
        await a.close()
        await b.close()

    run(main())


def test_restart_selects_a_new_pair_and_keeps_data_flowing():
    """ICE restart (RFC 8445 §9): new credentials, new checks, a new pair."""
    async def main():
        a = aio.Connection(True, include_loopback=True, use_ipv6=False)
        b = aio.Connection(False, include_loopback=True, use_ipv6=False)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        first_pair, first_ufrag = a.selected_pair, a.local_username
        a.restart()
        b.restart()
        assert a.local_username != first_ufrag and a.state == "checking"
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        while a.selected_pair is first_pair:
            await asyncio.sleep(0.01)
        await ping_pong(a, b)
        await a.close()
        await b.close()

    run(main())


@pytest.mark.parametrize("ours_controlling", [True, False], ids=["ours-controlling", "ours-controlled"])
def test_connects_to_aioice(ours_controlling):
    async def main():
        ours = aio.Connection(ours_controlling)
        theirs = aioice.Connection(not ours_controlling)
        await asyncio.gather(ours.gather_candidates(), theirs.gather_candidates())
        assert ours.local_candidates, "no host candidate on this machine's interfaces"
        theirs.remote_username, theirs.remote_password = ours.local_username, ours.local_password
        ours.remote_username, ours.remote_password = theirs.local_username, theirs.local_password
        for c in ours.local_candidates:
            await theirs.add_remote_candidate(aioice.Candidate.from_sdp(c.to_sdp()))
        for c in theirs.local_candidates:
            await ours.add_remote_candidate(aio.Candidate.from_sdp(c.to_sdp()))
        await ours.add_remote_candidate(None)
        await theirs.add_remote_candidate(None)
        await asyncio.gather(ours.connect(), theirs.connect())
        await ping_pong(ours, theirs)
        stats = ours.stats()
        assert stats["counters"]["unauthenticated"] == 0 and stats["counters"]["internal_errors"] == 0
        await ours.close()
        await theirs.close()

    run(main())


def test_candidate_is_aioice_compatible():
    line = "6815297761 1 udp 659136 1.2.3.4 31102 typ srflx raddr 10.0.0.1 rport 5000 generation 0"
    ours = aio.Candidate.from_sdp(line)
    theirs = aioice.Candidate.from_sdp(line)
    assert ours.to_sdp() == theirs.to_sdp() == line
    for field in ("foundation", "component", "transport", "priority", "host", "port", "type",
                  "related_address", "related_port", "generation"):
        assert getattr(ours, field) == getattr(theirs, field), field
    positional = aio.Candidate("1", 1, "udp", 2130706431, "10.0.0.2", 4000, "host")
    assert positional.to_sdp() == "1 1 udp 2130706431 10.0.0.2 4000 typ host"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_relay_only_connects_through_coturn(turn_server, transport):
    async def main():
        a = aio.Connection(True, **relay_kwargs(turn_server, transport))
        b = aio.Connection(False, **relay_kwargs(turn_server, transport))
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for conn in (a, b):
            assert [c.type for c in conn.local_candidates] == ["relay"]
            assert conn.local_candidates[0].host == turn_server.ip
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        assert a.selected_pair.local.type == "relay" and a.selected_pair.remote.type == "relay"
        await ping_pong(a, b)
        turn = a.stats()["turn"][0]
        assert turn["transport"] == transport and turn["state"] == "ready"
        assert turn["counters"]["channel_binds"] >= 1  # the data path moved to a channel
        await a.close()
        await b.close()

    run(main())


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_relay_survives_permission_channel_and_allocation_refresh(tmp_path, transport):
    """RFC 8656 §7, §9, §12: lifetimes cut to 3-4 s; data keeps flowing for
    about three times that, so every refresh must have happened on time,
    over UDP, TCP and TLS alike."""
    options = {"permission_refresh_ms": 2000, "channel_refresh_ms": 2000}

    async def main(turn):
        kwargs = relay_kwargs(turn, transport)
        a = aio.Connection(True, turn_options=options, **kwargs)
        b = aio.Connection(False, turn_options=options, **kwargs)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        for _ in range(10):
            await ping_pong(a, b, rounds=1)
            await asyncio.sleep(1)
        for conn in (a, b):
            turn_stats = conn.stats()["turn"][0]
            assert turn_stats["state"] == "ready"
            counters = turn_stats["counters"]
            # The 4 s allocation was refreshed in time (coturn grants 600 s to
            # a Refresh whatever its cap, so one is enough to outlive the test).
            assert counters["refreshes"] >= 1, counters
            assert counters["channel_binds"] >= 3, counters
            assert conn.state in ("connected", "completed")
        await a.close()
        await b.close()

    ca = TestCA(tmp_path)
    with TurnServer(channel_lifetime=3, permission_lifetime=3, max_allocate_lifetime=4,
                    tls=ca.server("localhost")) as turn:
        turn.ca = ca
        run(main(turn), timeout=40)


def test_alternate_server_redirect(turn_server):
    """A 300 Try Alternate (RFC 8489 §10) moves the allocation to the server named."""
    async def main(redirector):
        conn = aio.Connection(True, **relay_kwargs(redirector, "udp"))
        await conn.gather_candidates()
        assert [c.type for c in conn.local_candidates] == ["relay"]
        assert conn.stats()["turn"][0]["server"] == (turn_server.ip, turn_server.port)
        await conn.close()

    with TurnServer.redirecting_to(turn_server) as redirector:
        run(main(redirector))


def test_wrong_turn_password_fails_gathering_cleanly(turn_server):
    async def main():
        kwargs = relay_kwargs(turn_server, "udp")
        kwargs["turn_password"] = "not-the-password"
        conn = aio.Connection(True, **kwargs)
        await conn.gather_candidates()
        assert conn.local_candidates == []
        turn = conn.stats()["turn"][0]
        assert turn["state"] == "failed" and "credentials" in turn["error"]
        await conn.close()

    run(main())


def silent_udp_port():
    """A bound socket that never answers: a dead STUN server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_dead_stun_server_delays_no_other_candidate(turn_server):
    """Candidates trickle out as found: host and relay arrive at once, and
    the peers connect, while a STUN server that never answers times out."""
    dead = silent_udp_port()

    async def main():
        start = time.monotonic()
        arrived = {}

        def note(cand):
            if cand is not None:
                arrived.setdefault(cand.type, time.monotonic() - start)

        kwargs = dict(include_loopback=True, use_ipv6=False, stun_server=dead.getsockname(),
                      turn_server=(turn_server.ip, turn_server.port), turn_username=turn_server.username,
                      turn_password=turn_server.password, config=Config(max_sends=3), on_candidate=note)
        a = aio.Connection(True, **kwargs)
        b = aio.Connection(False, include_loopback=True, use_ipv6=False)
        gathering = asyncio.ensure_future(a.gather_candidates())
        await b.gather_candidates()
        while "relay" not in arrived:
            await asyncio.sleep(0.01)
        assert arrived["host"] < 0.5 and arrived["relay"] < 0.5, arrived
        assert not gathering.done()  # the dead server is still being asked
        await exchange(a, b, end=False)
        await asyncio.gather(a.connect(), b.connect())
        assert not gathering.done()  # connected before gathering even ended
        await ping_pong(a, b, rounds=1)
        await gathering
        assert time.monotonic() - start > 2.5  # 500 + 1000 + 1600 ms of retransmits
        await a.close()
        await b.close()

    try:
        run(main())
    finally:
        dead.close()


def test_unresolvable_mdns_candidate_is_reached_as_peer_reflexive():
    """The controlled side gets only a `.local` name nobody answers for; the
    controlling side's checks still arrive and teach it a prflx candidate."""
    async def main():
        a = aio.Connection(True, include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"])
        b = aio.Connection(False, include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"],
                           mdns_timeout_ms=300, mdns_interface="127.0.0.1")
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        b.remote_username, b.remote_password = a.local_username, a.local_password
        a.remote_username, a.remote_password = b.local_username, b.local_password
        hidden = a.local_candidates[0]
        await b.add_remote_candidate(aio.Candidate(
            hidden.foundation, 1, "udp", hidden.priority, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9.local",
            hidden.port, "host"))
        for c in b.local_candidates:
            await a.add_remote_candidate(c)
        await asyncio.gather(a.connect(), b.connect())
        assert b.selected_pair.remote.type == "prflx"
        await ping_pong(a, b, rounds=1)
        await asyncio.sleep(0.5)
        assert b.stats()["driver"]["mdns_unresolved"] == 1
        await a.close()
        await b.close()

    run(main())


def candidate_type(line):
    return aio.Candidate.from_sdp(line).type


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
@pytest.mark.parametrize("mp_controlling, relay", [
    (True, None), (False, None), (False, "udp"), (True, "tcp"),
], ids=["mp-controlling", "mp-controlled", "mp-relay-udp", "mp-relay-tcp"])
def test_micropython_connection_reaches_cpython_connection(tmp_path, turn_server, mp_controlling, relay, micropython):
    """The same Connection class on the MicroPython unix ports' asyncio (64-
    and 32-bit), with host candidates, and relay-only through coturn over UDP
    and over TCP."""
    options = relay_kwargs(turn_server, relay) if relay else {}

    async def main():
        ours = aio.Connection(not mp_controlling, include_loopback=True, use_ipv6=False,
                              include_addresses=["127.0.0.1"])
        async with MicroPythonPeer(tmp_path, ours, mp_controlling, options, micropython=micropython) as peer:
            kinds = {candidate_type(line) for line in peer.answer["candidates"]}
            assert kinds == ({"relay"} if relay else {"host"})
            assert ours.selected_pair.remote.type == ("relay" if relay else "host")
            await ours.send(b"from cpython")
            assert await asyncio.wait_for(ours.recv(), 5) == b"echo from cpython"
            result = await peer.result()
            assert result["state"] in ("connected", "completed") and result["got"] == "from cpython"

    run(main(), timeout=60)


def test_mdns_candidate_is_resolved_and_paired_as_host():
    """A browser-style `<uuid>.local` candidate, answered by an independent
    responder (python-zeroconf on loopback), becomes a host pair."""
    zeroconf = pytest.importorskip("zeroconf")
    name = "%s.local" % uuid.uuid4()
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)
    info = zeroconf.ServiceInfo(
        "_ice-test._udp.local.", "connection._ice-test._udp.local.",
        addresses=[socket.inet_aton("127.0.0.1")], port=9, server=name + ".")
    zc.register_service(info)

    async def main():
        a = aio.Connection(True, include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"])
        b = aio.Connection(False, include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"],
                           mdns_interface="127.0.0.1")
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        b.remote_username, b.remote_password = a.local_username, a.local_password
        hidden = a.local_candidates[0]
        await b.add_remote_candidate(aio.Candidate(hidden.foundation, 1, "udp", hidden.priority, name,
                                                   hidden.port, "host"))
        while not b.remote_candidates:  # resolved in the background
            await asyncio.sleep(0.02)
        assert b.remote_candidates[0].host == "127.0.0.1" and b.remote_candidates[0].type == "host"
        a.remote_username, a.remote_password = b.local_username, b.local_password
        for c in b.local_candidates:
            await a.add_remote_candidate(c)
        await asyncio.gather(a.connect(), b.connect())
        assert b.selected_pair.remote.type == "host"
        await ping_pong(a, b, rounds=1)
        await a.close()
        await b.close()

    try:
        run(main())
    finally:
        zc.unregister_service(info)
        zc.close()


def test_turn_server_restart_reallocates_and_ice_restart_recovers():
    """The TURN server reboots and forgets the allocations: the next Refresh
    fails, the relayed candidate is withdrawn and allocated again, and an ICE
    restart with the new candidates brings data back through the new relays."""
    async def main(turn):
        kwargs = relay_kwargs(turn, "udp")
        a = aio.Connection(True, **kwargs)
        b = aio.Connection(False, **kwargs)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        await ping_pong(a, b, rounds=1)
        old_pair = a.selected_pair
        await asyncio.get_running_loop().run_in_executor(None, turn.restart)
        for conn in (a, b):  # the 4 s allocation's refresh (at 3 s) meets the new server
            while conn.stats()["counters"]["relays_lost"] < 1 or len(conn.local_candidates) != 1:
                await asyncio.sleep(0.05)
            assert conn.local_candidates[0].type == "relay"
            assert conn.stats()["turn"][0]["state"] == "ready"  # the new allocation
        a.restart()
        b.restart()
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        while a.selected_pair is old_pair:
            await asyncio.sleep(0.05)
        await ping_pong(a, b, rounds=2)
        await a.close()
        await b.close()

    with TurnServer(max_allocate_lifetime=4) as turn:
        run(main(turn), timeout=60)


def test_close_leaves_no_socket_task_or_resource_warning(turn_server):
    """Every socket, stream and task of a Connection ends with close(): none
    is left to the garbage collector (which would warn)."""
    import gc
    import warnings

    async def main():
        a = aio.Connection(True, include_loopback=True, use_ipv6=False, stun_server=(turn_server.ip, turn_server.port),
                           turn_server=(turn_server.ip, turn_server.port), turn_username=turn_server.username,
                           turn_password=turn_server.password, turn_transport="tcp")
        b = aio.Connection(False, include_loopback=True, use_ipv6=False)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        assert {c.type for c in a.local_candidates} >= {"host", "relay"}
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        await ping_pong(a, b, rounds=1)
        await a.close()
        await b.close()
        assert a._sockets == {} and a._streams == {} and a._tasks == []
        others = [t for t in asyncio.all_tasks()
                  if t is not asyncio.current_task() and t.get_coro().__name__ != "wait_for"]  # run()'s
        assert others == [], others

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(main())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
