"""ice.aio.Connection's data path on loopback, real sockets: the selected
pair's send allocates nothing, a received datagram costs its payload and no
more, the receive queue keeps the newest when full, and misuse raises with
a message. Runs under pytest and under both MicroPython unix ports; the
allocation meter (gc.mem_alloc with gc off) is MicroPython's, on CPython
the same traffic runs and its delivery is checked."""

import gc
import socket

import asyncio

from ice import aio
from ice.compat import IS_MICROPYTHON, addr_to_socket
from mpbench.loopback import connected_pair
SIZE = 1100


def allocated():
    return gc.mem_alloc() if IS_MICROPYTHON else 0


def datagram(tag):
    data = bytearray(SIZE)
    data[0] = 0x81
    data[1] = tag & 0xFF
    return data


def connected(queue=64):
    return connected_pair({"recv_queue_size": queue})  # (viewer, camera)


async def settle():
    for _ in range(20):
        await asyncio.sleep(0.005)


async def drain(conn):
    got = []
    while True:
        data = conn.recv_nowait()
        if data is None:
            return got
        got.append(data)


def test_selected_pair_send_allocates_nothing_and_every_datagram_arrives():
    async def main():
        a, b = await connected()
        data = datagram(0)
        for _ in range(8):  # first use: interned names, the route
            assert b.send_nowait(data)
        await settle()
        await drain(a)
        used = []
        for block in range(25):
            data[1] = block
            gc.disable()
            before = allocated()
            for _ in range(8):
                assert b.send_nowait(data)
            used.append(allocated() - before)
            gc.enable()
            await settle()
            got = await drain(a)
            assert len(got) == 8 and all(g == data for g in got), (block, len(got))
        assert max(used) == 0, used
        assert b.counters["send_failed"] == 0
        assert b.selected_pair.bytes_sent == 8 * SIZE + 25 * 8 * SIZE
        await a.close()
        await b.close()

    asyncio.run(main())


def raw_receive_cost(count):
    """Bytes a plain socket's recvfrom allocates for `count` datagrams."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(addr_to_socket("127.0.0.1", 42999 if IS_MICROPYTHON else 0))
        port = 42999 if IS_MICROPYTHON else rx.getsockname()[1]
        addr = addr_to_socket("127.0.0.1", port)
        for _ in range(count):
            tx.sendto(datagram(1), addr)
        gc.collect()
        gc.disable()
        before = allocated()
        for _ in range(count):
            rx.recvfrom(SIZE + 100)
        used = allocated() - before
        gc.enable()
        return used
    finally:
        rx.close()
        tx.close()


async def receive_cost(a, sock, dest, count):
    """Bytes allocated from a burst of `count` datagrams (sent before the
    receiver runs, so one wake of its reader takes them all) to the last
    one taken with recv_nowait(); the fewest of three bursts."""
    costs = []
    for _ in range(3):
        for i in range(count):
            sock.sendto(datagram(i), dest)
        got = [None] * count
        taken = 0
        gc.collect()
        gc.disable()
        before = allocated()
        while taken < count:
            data = a.recv_nowait()
            if data is None:
                await asyncio.sleep(0)
            else:
                got[taken] = data
                taken += 1
        costs.append(allocated() - before)
        gc.enable()
        assert [g[1] for g in got] == list(range(count))
    return min(costs)


def test_a_received_datagram_costs_its_payload_and_no_more():
    """From the selected pair's remote to recv_nowait(): a datagram costs
    what recvfrom allocates on a plain socket, nothing more; a wake of the
    reader costs at most 512 bytes whatever it reads (MicroPython's
    recvfrom would leave a dead buffer per EAGAIN: the reader asks the
    socket first)."""

    async def main():
        a, b = await connected()
        pair = b.selected_pair
        sock = b._sockets[(pair.local.base_ip, pair.local.base_port)]
        dest = addr_to_socket(pair.remote.host, pair.remote.port)
        few = await receive_cost(a, sock, dest, 5) - raw_receive_cost(5)
        many = await receive_cost(a, sock, dest, 30) - raw_receive_cost(30)
        print("receive: %d bytes beyond a plain socket's for 5 datagrams, %d for 30" % (few, many))
        assert few <= 512, few
        assert many - few <= 50, (few, many)  # under 2 bytes a datagram: none of its own
        assert a.counters["recv_dropped"] == 0
        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_full_receive_queue_keeps_the_newest_and_counts_the_rest():
    async def main():
        a, b = await connected(queue=4)
        for i in range(10):
            assert b.send_nowait(datagram(i))
        await settle()
        got = await drain(a)
        assert [g[1] for g in got] == [6, 7, 8, 9]
        assert a.counters["recv_dropped"] == 6
        await a.close()
        await b.close()

    asyncio.run(main())


def test_misuse_of_the_data_path_raises_with_a_message():
    async def main():
        a, b = await connected()
        try:
            b.send_nowait(bytearray(1473))
        except ValueError as exc:
            assert "max_data_size" in str(exc)
        else:
            raise AssertionError("a 1,473-byte datagram was taken")
        await b.close()
        for attempt in (lambda: b.send_nowait(b"x"), lambda: b.recv_nowait()):
            try:
                attempt()
            except aio.ConnectionError as exc:
                assert "closed" in str(exc) or "lost" in str(exc)
            else:
                raise AssertionError("a closed connection took a call")
        await a.close()

    asyncio.run(main())
