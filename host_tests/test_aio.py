"""ice.aio without the network: misuse raises ConnectionError on both
runtimes (MicroPython has no such builtin; ice.compat supplies one)."""

import asyncio

from ice import aio


def run(coro):
    return asyncio.run(coro)


def raises_connection_error(coro):
    try:
        run(coro)
    except aio.ConnectionError as exc:
        assert str(exc)
        return True
    return False


def test_send_before_connect_raises_connection_error():
    conn = aio.Connection(True, interfaces=[], include_loopback=True)
    assert raises_connection_error(conn.send(b"too early"))


def test_connect_before_gathering_raises_connection_error():
    conn = aio.Connection(False, interfaces=[])
    assert raises_connection_error(conn.connect())


def test_connection_error_is_an_os_error():
    assert issubclass(aio.ConnectionError, OSError)


def test_bad_arguments_raise_value_error_with_a_message():
    for kwargs in ({"components": 2}, {"turn_transport": "sctp"}, {"turn_server": ("h", 1)},
                   {"local_password": "short"}, {"transport_policy": "nearby"},
                   {"turn_server": ("h", 1), "turn_username": "u", "turn_password": "p", "turn_ssl": True},
                   {"ice_servers": ["turns:h?transport=udp"]}):
        try:
            aio.Connection(True, **kwargs)
        except ValueError as exc:
            assert str(exc)
        else:
            raise AssertionError("accepted %r" % (kwargs,))


def test_a_deadline_handle_timeout_cannot_move_does_not_starve_other_tasks():
    """A past deadline that handle_timeout leaves in place (as a check
    waiting for a TURN permission's answer did, found with browsers behind
    NATs) must not spin the timer loop: the socket readers, here another
    task, still run, and handle_timeout keeps being called."""
    from ice.compat import ticks_add, ticks_diff, ticks_ms

    conn = aio.Connection(False, interfaces=[])
    stuck = ticks_add(ticks_ms(), -10)
    calls = [0]  # a count: the loop may run thousands of times here

    def handle_timeout(now):
        calls[0] += 1

    conn._agent.poll_timeout = lambda: stuck
    conn._agent.handle_timeout = handle_timeout

    async def main():
        timer = asyncio.create_task(conn._timer())
        started = ticks_ms()
        await asyncio.sleep_ms(50) if hasattr(asyncio, "sleep_ms") else await asyncio.sleep(0.05)
        waited = ticks_diff(ticks_ms(), started)
        conn._closed = True
        conn._wake.set()
        await timer
        return waited

    waited = run(main())
    assert waited < 500, waited  # this task ran again: the loop yielded
    assert calls[0] >= 2, calls  # and handle_timeout was still called, again and again
