"""Small helpers shared by the portable tests (no pytest on MicroPython)."""


def raises(exc, fn, *args):
    """True when fn(*args) raises `exc`; any other exception propagates."""
    try:
        fn(*args)
    except exc:
        return True
    return False
