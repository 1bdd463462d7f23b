"""The data path's cost next to a raw socket, in one process (MicroPython
or CPython):

    micropython -m datapath [COUNT]      python tools/mpbench/datapath.py [COUNT]

Two ice.aio.Connections meet on loopback (host pair). Then, for 1,100-byte
datagrams:
- send: COUNT through the camera side's Connection with `await send()`,
  then with send_nowait(), then COUNT with a plain non-blocking sendto on
  the same socket to the same address; in blocks of 8 with a yield to the
  loop between blocks, only the send calls timed;
- receive: batches of BATCH sent from the camera's socket, timed from the
  first `await recv()` (or recv_nowait()) to the last on the viewer's
  Connection; then the same through a plain socket and recvfrom.
gc is off while timing, so on MicroPython gc.mem_alloc() deltas are the
bytes each way allocated (CPython has no such meter: "-"). Prints
`SEND way µs-per-datagram bytes-per-datagram` and `RECV ...` (way: conn,
conn_nowait, raw) and `LOST n`: datagrams the receive runs lost."""

import gc
import socket
import sys

import asyncio
from ice import netio
from ice.compat import addr_to_socket, ticks_diff, ticks_us
from loopback import connected_pair
SIZE = 1100
BATCH = 50  # what a default loopback receive buffer holds of 1,100-byte datagrams, with room
RAW_PORT = 47123
_mem_alloc = getattr(gc, "mem_alloc", None)


def allocated():
    return _mem_alloc() if _mem_alloc is not None else 0


async def connect():
    a, b = await connected_pair({"recv_queue_size": 2 * BATCH})  # the viewer, the camera
    while a.state != "completed" or b.state != "completed":
        await netio.sleep_ms(5)
    return a, b


def datagram():
    data = bytearray(SIZE)
    data[0] = 0x81
    return data


async def time_sends(count, send, awaited=False):
    """(µs, bytes allocated) per datagram of `send(data)` calls (`await
    send(data)` with `awaited`), in blocks of 8 with a yield to the loop
    between blocks (the receiver drains meanwhile)."""
    data = datagram()
    spent = alloc = 0
    blocks = count // 8
    for _ in range(blocks):
        gc.disable()
        before = allocated()
        t = ticks_us()
        if awaited:
            for _ in range(8):
                await send(data)
        else:
            for _ in range(8):
                send(data)
        spent += ticks_diff(ticks_us(), t)
        alloc += allocated() - before
        gc.enable()
        await netio.sleep_ms(0)
    return spent / (8 * blocks), alloc / (8 * blocks)


async def drain(conn):
    try:
        while True:
            await netio.wait_ms(conn.recv(), 20)
    except asyncio.TimeoutError:
        pass


async def time_receives(a, sock, addr, batches, nowait=False):
    """(µs, bytes allocated) per datagram from the first recv() (or
    recv_nowait()) to the last of each batch."""
    data = datagram()
    spent = alloc = 0
    for _ in range(batches):
        for _ in range(BATCH):
            sock.sendto(data, addr)
        got = b""
        gc.collect()
        gc.disable()
        before = allocated()
        t = ticks_us()
        if nowait:  # the reader runs while this yields
            taken = 0
            while taken < BATCH:
                got = a.recv_nowait()
                if got is None:
                    await netio.sleep_ms(0)
                else:
                    taken += 1
        else:
            for _ in range(BATCH):
                got = await a.recv()
        spent += ticks_diff(ticks_us(), t)
        alloc += allocated() - before
        gc.enable()
        assert got is not None and len(got) == SIZE
        await netio.sleep_ms(0)
    return spent / (batches * BATCH), alloc / (batches * BATCH)


def time_raw_receives(batches):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(addr_to_socket("127.0.0.1", RAW_PORT))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = addr_to_socket("127.0.0.1", RAW_PORT)
    data = datagram()
    spent = alloc = 0
    for _ in range(batches):
        for _ in range(BATCH):
            tx.sendto(data, addr)
        gc.collect()
        gc.disable()
        before = allocated()
        t = ticks_us()
        for _ in range(BATCH):
            rx.recvfrom(SIZE + 61)
        spent += ticks_diff(ticks_us(), t)
        alloc += allocated() - before
        gc.enable()
    rx.close()
    tx.close()
    return spent / (batches * BATCH), alloc / (batches * BATCH)


async def main(count):
    a, b = await connect()
    pair = b.selected_pair
    sock = b._sockets[(pair.local.base_ip, pair.local.base_port)]
    addr = addr_to_socket(pair.remote.host, pair.remote.port)
    results = []
    for way, send, awaited in (("conn", b.send, True), ("conn_nowait", b.send_nowait, False),
                               ("raw", lambda d: sock.sendto(d, addr), False)):
        results.append(("SEND", way, await time_sends(count, send, awaited)))
        await drain(a)
    batches = max(1, count // (4 * BATCH))
    dropped = a.counters["recv_dropped"]  # what the send runs queued unread
    results.append(("RECV", "conn", await time_receives(a, sock, addr, batches)))
    results.append(("RECV", "conn_nowait", await time_receives(a, sock, addr, batches, True)))
    results.append(("RECV", "raw", time_raw_receives(batches)))
    for kind, way, (us, per) in results:
        print(kind, way, "%.2f" % us, "%.0f" % per if _mem_alloc is not None else "-")
    print("LOST", a.counters["recv_dropped"] - dropped)
    await a.close()
    await b.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
