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
