"""TURN over TLS (RFC 8656 §3.1) against a real coturn with a certificate
from a CA made for the session (conftest.py's turn_server): refusals that
name the server, verification that is on unless turned off explicitly, a
connection cut mid-session, and a silent server that holds back only its
own candidate. The data sweep over TLS is in test_relay_datapath.py.
CPython only; the MicroPython unix ports run as peers."""

import asyncio
import os
import socket

import pytest

from ice import aio, netio
from peers import MICROPYTHONS, ROOT, MicroPythonPeer, ca_context, exchange, ping_pong, run
from testca import TestCA
from turnserver import TurnServer

RUNTIMES = ["cpython"] + [m for _, m in MICROPYTHONS]
RUNTIME_IDS = ["cpython"] + [n for n, _ in MICROPYTHONS]
LOOPBACK = dict(include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"])


def turns(turn, host="localhost", port=None):
    return [{"urls": "turns:%s:%d" % (host, port or turn.tls_port), "username": turn.username,
             "credential": turn.password}]


async def allocations(runtime, tmp_path, ice_servers, cafile, **options):
    """[state, error] of each TURN allocation once `runtime` has gathered
    with `ice_servers` and Connection `options`, trusting the CA in `cafile`."""
    if runtime == "cpython":
        conn = aio.Connection(True, ice_servers=ice_servers, transport_policy="relay",
                              turn_ssl=ca_context(cafile), **LOOPBACK, **options)
        await conn.gather_candidates()
        found = [[t["state"], t["error"]] for t in conn.stats()["turn"]]
        await conn.close()
        return found
    ours = aio.Connection(True, **LOOPBACK)
    peer = MicroPythonPeer(tmp_path, ours, False, dict(options, ice_servers=ice_servers, turn_ca=cafile,
                                                       transport_policy="relay"), micropython=runtime)
    try:
        return (await peer.start())["turn"]
    finally:
        await peer.__aexit__(None, None, None)


@pytest.mark.parametrize("runtime", RUNTIMES, ids=RUNTIME_IDS)
def test_a_certificate_from_another_ca_is_refused_naming_the_server(turn_server, tmp_path, runtime):
    other = TestCA(tmp_path, "another CA")
    found = run(allocations(runtime, tmp_path, turns(turn_server), other.pem))
    [[state, error]] = found
    assert state == "failed", found
    assert error.startswith("TURN server localhost:%d: " % turn_server.tls_port), error
    assert "certificate" in error.lower() or "CA" in error, error


@pytest.mark.parametrize("runtime", RUNTIMES, ids=RUNTIME_IDS)
def test_a_certificate_for_another_name_is_refused(turn_server, tmp_path, runtime):
    """The certificate names "localhost"; reached as 127.0.0.1 it must not pass."""
    found = run(allocations(runtime, tmp_path, turns(turn_server, "127.0.0.1"), turn_server.ca.pem))
    [[state, error]] = found
    assert state == "failed", found
    assert error.startswith("TURN server 127.0.0.1:%d: " % turn_server.tls_port), error
    assert "match" in error.lower(), error


def test_verification_is_on_by_default_and_off_only_when_asked(turn_server):
    async def gathered(**options):
        conn = aio.Connection(True, transport_policy="relay", **LOOPBACK, **options)
        await conn.gather_candidates()
        found = conn.stats()["turn"][0]
        await conn.close()
        return found

    by_default = run(gathered(ice_servers=turns(turn_server)))  # the system's CAs do not know ours
    assert by_default["state"] == "failed" and "certificate verify failed" in by_default["error"], by_default
    unchecked = run(gathered(ice_servers=turns(turn_server, "127.0.0.1"), turn_ssl=netio.tls_context(verify=False)))
    assert unchecked["state"] == "ready", unchecked


def test_aioice_style_arguments_reach_tls(turn_server):
    """turn_server + turn_ssl + turn_transport="tcp", as aioice takes them."""
    async def main():
        ctx = ca_context(turn_server.ca.pem)
        options = dict(turn_server=("localhost", turn_server.tls_port), turn_username=turn_server.username,
                       turn_password=turn_server.password, turn_ssl=ctx, turn_transport="tcp",
                       transport_policy="relay", **LOOPBACK)
        a, b = aio.Connection(True, **options), aio.Connection(False, **options)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        assert a.selected_pair.local.type == "relay"
        await ping_pong(a, b)
        await a.close()
        await b.close()

    run(main())
    with pytest.raises(ValueError, match="turn_transport='tcp'"):
        aio.Connection(True, turn_server=("localhost", 1), turn_username="u", turn_password="p", turn_ssl=True)


def test_a_cut_tls_connection_withdraws_the_relay_and_allocates_again(tmp_path):
    """coturn restarts mid-session: each side's TLS connection drops, its
    relayed candidate is withdrawn, a new connection allocates a new one,
    and an ICE restart (what the camera app and viewer do) carries data
    again."""
    ca = TestCA(tmp_path)
    with TurnServer(tls=ca.server("localhost")) as turn:
        async def main():
            trickled = {True: [], False: []}
            ctx = ca_context(ca.pem)
            conns = [aio.Connection(side, ice_servers=turns(turn), turn_ssl=ctx, transport_policy="relay",
                                    on_candidate=trickled[side].append, **LOOPBACK) for side in (True, False)]
            a, b = conns
            await asyncio.gather(a.gather_candidates(), b.gather_candidates())
            await exchange(a, b)
            await asyncio.gather(a.connect(), b.connect())
            await ping_pong(a, b)
            first = [c.local_candidates[0] for c in conns]
            turn.restart()
            for _ in range(100):
                await asyncio.sleep(0.1)
                if all(c.stats()["counters"]["relays_lost"] == 1 and c.stats()["turn"][0]["state"] == "ready"
                       for c in conns):
                    break
            for conn, old in zip(conns, first):
                stats = conn.stats()
                assert stats["counters"]["relays_lost"] == 1 and stats["turn"][0]["state"] == "ready", stats["turn"]
                [fresh] = conn.local_candidates
                assert fresh is not old and fresh.type == "relay"
                assert trickled[conn.ice_controlling][-1].to_sdp() == fresh.to_sdp()
            for conn in conns:
                conn.restart()
            await exchange(a, b)
            await asyncio.gather(a.connect(), b.connect())
            await ping_pong(a, b)
            await a.close()
            await b.close()

        run(main(), timeout=60)


async def relay_trickles_while_gathering(conn, seen):
    """Start gathering on `conn` (its on_candidate appends to `seen`); once a
    relayed candidate trickled, check the host one came too and gathering
    is still waiting for another server. Returns the gathering task."""
    gathering = asyncio.ensure_future(conn.gather_candidates())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if any(c is not None and c.type == "relay" for c in seen):
            break
    kinds = sorted(c.type for c in seen if c is not None)
    assert "host" in kinds and "relay" in kinds, kinds
    assert not gathering.done() and None not in seen
    return gathering


def test_a_silent_turns_server_holds_back_only_its_own_candidate(turn_server):
    """A turns: server that accepts TCP and never says a word: the host
    candidates and the other server's relayed one trickle at once; only
    the end of gathering waits for the silent one."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)

    async def main():
        seen = []
        servers = turns(turn_server, port=silent.getsockname()[1]) + [
            {"urls": "turn:127.0.0.1:%d" % turn_server.port, "username": turn_server.username,
             "credential": turn_server.password}]
        conn = aio.Connection(True, ice_servers=servers, turn_ssl=netio.tls_context(verify=False),
                              on_candidate=seen.append, **LOOPBACK)
        gathering = await relay_trickles_while_gathering(conn, seen)
        await conn.close()
        gathering.cancel()

    try:
        run(main())
    finally:
        silent.close()


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
def test_the_camera_streams_through_a_turns_server(turn_server, tmp_path, micropython):
    """The camera app (firmware/main.py, unix board) with secrets naming a
    turns: server, its CA file and the relay-only policy: the viewer's
    frames come from the camera's relayed candidate, over TLS."""
    import signaling
    import viewer as viewer_tool

    (tmp_path / "secrets.py").write_text(
        "TURN_SERVERS = %r\nTURN_CA = %r\nICE_TRANSPORT_POLICY = 'relay'\n"
        % (turns(turn_server), turn_server.ca.pem))

    async def main():
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0)
        viewer = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), "tls-cam", ("127.0.0.1", 0),
                                    include_loopback=True, log=lambda line: None,
                                    connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
        camera = await asyncio.create_subprocess_exec(
            micropython, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"), "--board", "unix",
            "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", "tls-cam", "--interface", "127.0.0.1",
            "--seconds", "30", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ, MICROPYPATH="%s:.frozen" % tmp_path))
        try:
            await viewer.start()
            status = await viewer.wait_for(lambda s: s["frames_completed"] >= 20, 30)
            assert status["selected"]["remote_type"] == "relay", status["selected"]
            assert status["frames_dropped"] == 0, status
        except asyncio.TimeoutError:
            camera.terminate()
            raise AssertionError((await camera.stdout.read()).decode()[-3000:])
        finally:
            if camera.returncode is None:
                camera.terminate()
            await camera.wait()
            await viewer.close()
            await server.close()

    run(main(), timeout=60)


def test_the_viewer_takes_server_uris_and_a_ca(turn_server, capsys):
    import ssl

    import viewer as viewer_tool

    args = viewer_tool.parse_args(["--ice-server", "turns:localhost:%d" % turn_server.tls_port,
                                   "--ice-server", "stun:127.0.0.1", "--turn-user", "u", "--turn-password", "p",
                                   "--turn-ca", turn_server.ca.pem, "--relay-only"])
    options = viewer_tool._server_options(args)
    assert options["ice_servers"][0] == {"urls": "turns:localhost:%d" % turn_server.tls_port, "username": "u",
                                         "credential": "p"}
    assert isinstance(options["turn_ssl"], ssl.SSLContext)
    for bad in (["--ice-server", "turns:localhost"], ["--ice-server", "turn:h?transport=sctp", "--turn-user", "u",
                                                      "--turn-password", "p"]):
        with pytest.raises(SystemExit):
            viewer_tool.parse_args(bad)
        assert "turn" in capsys.readouterr().err
