"""Every datagram through a real TURN server (coturn) and real sockets: each
size from 1 to 1,200 bytes, over UDP, TCP and TLS, before the channel is bound
(Send indications) and after (ChannelData), between two CPython Connections
and with a Connection on the MicroPython unix ports; the size limit as an
error that names it. CPython only."""

import asyncio

import pytest

from ice import aio
from ice.agent import Config
from peers import MICROPYTHONS, MicroPythonPeer, exchange, relay_kwargs, run

SIZES = range(1, 1201)


def payload(size, tag):
    """`size` bytes whose first byte runs through every value (RFC 7983's
    STUN, DTLS and ChannelData ranges included) and that name their size."""
    head = b"%c%d:%s:" % (size & 0xFF, size, tag)
    return (head * (size // len(head) + 1))[:size]


async def sweep(sender, receiver, tag):
    """Every size, one at a time (no socket buffer overflows on loopback)."""
    for size in SIZES:
        data = payload(size, tag)
        await sender.send(data)
        got = await asyncio.wait_for(receiver.recv(), 5)
        assert got == data, (tag, size, got[:20])


def relay_client(conn):
    return conn._agent._relays.clients[0]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_every_size_through_coturn_before_and_after_the_channel_rfc8656(turn_server, transport):
    async def main():
        a = aio.Connection(True, **relay_kwargs(turn_server, transport))
        b = aio.Connection(False, **relay_kwargs(turn_server, transport))
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        # Hold the ChannelBinds back, so the first sweep goes as Send
        # indications (§11); the real bind follows (§12).
        held = []
        for conn in (a, b):
            client = relay_client(conn)
            real = client.bind_channel
            client.bind_channel = lambda ip, port, real=real: held.append((real, ip, port))
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        assert a.selected_pair.local.type == "relay" and len(held) == 2
        for conn in (a, b):
            assert relay_client(conn).counters["channel_binds"] == 0
        await asyncio.gather(sweep(a, b, b"ab-si"), sweep(b, a, b"ba-si"))
        for real, ip, port in held:
            real(ip, port)
        for conn in (a, b):
            conn._pump()
        for conn in (a, b):
            while relay_client(conn).counters["channel_binds"] < 1:
                await asyncio.sleep(0.01)
        await asyncio.gather(sweep(a, b, b"ab-cd"), sweep(b, a, b"ba-cd"))
        for conn in (a, b):
            assert conn.stats()["driver"]["recv_dropped"] == 0
            with pytest.raises(ValueError, match="1472"):
                await conn.send(bytes(1473))
        await a.close()
        await b.close()

    run(main(), timeout=120)


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
@pytest.mark.parametrize("relay", [None, "udp", "tcp", "tls"], ids=["host", "relay-udp", "relay-tcp", "relay-tls"])
def test_every_size_to_micropython_and_back(tmp_path, turn_server, relay, micropython):
    """The camera's runtime: a MicroPython Connection mirrors every datagram
    of 1 to 1,200 bytes (all 256 first-byte values among them) back. Its
    send_nowait() allocates nothing on a direct pair and at most 64 bytes
    through a TURN channel (issue 19's budgets); TURN over TCP and TLS
    copies each datagram into the stream's buffer, so it has no such budget."""
    options = relay_kwargs(turn_server, relay) if relay else {}
    stream = relay in ("tcp", "tls")

    async def main():
        ours = aio.Connection(True, include_loopback=True, use_ipv6=False, include_addresses=["127.0.0.1"],
                              **options)
        theirs = relay_kwargs(turn_server, relay, portable=True) if relay else {}
        async with MicroPythonPeer(tmp_path, ours, False, theirs, mode="mirror", count=len(SIZES),
                                   micropython=micropython, meter=not stream) as peer:
            for size in SIZES:
                data = payload(size, b"mp")
                await ours.send(data)
                got = await asyncio.wait_for(ours.recv(), 5)
                assert got == data, (size, got[:20])
            result = await peer.result()
            assert result["answered"] == len(SIZES) and result["send_errors"] == 0, result
            if not stream:  # metered
                print("%s, %s: one send_nowait() allocates at most %d B"
                      % (micropython, relay or "host", result["send_alloc_max"]))
                assert result["send_alloc_max"] <= (64 if relay else 0), result

    run(main(), timeout=180)


def test_the_limit_follows_config_max_data_size(turn_server):
    async def main():
        config = Config(max_data_size=2000)
        a = aio.Connection(True, config=config, **relay_kwargs(turn_server, "udp"))
        b = aio.Connection(False, config=Config(max_data_size=2000), **relay_kwargs(turn_server, "udp"))
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        await exchange(a, b)
        await asyncio.gather(a.connect(), b.connect())
        await a.send(b"\x01" * 2000)
        assert await asyncio.wait_for(b.recv(), 5) == b"\x01" * 2000
        with pytest.raises(ValueError, match="2000"):
            await a.send(b"\x01" * 2001)
        await a.close()
        await b.close()

    run(main())
