"""Micro-benchmark of the STUN codec, on CPython and on MicroPython.

    python tools/bench_stun.py                              # ours, and aioice's when installed
    MICROPYPATH=.frozen:lib micropython tools/bench_stun.py   # ours

Prints µs per operation for the two things an ICE agent does per check:
parse + authenticate a Binding request, and build + sign a Binding response.
"""

import sys

from ice import digest, stun

try:
    from time import perf_counter

    def now_us():
        return perf_counter() * 1e6

except ImportError:
    from time import ticks_us as now_us

PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
KEY = digest.short_term_key(PASSWORD)
TXID = b"\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae"


def build_request():
    w = stun.Writer(bytearray(200)).start(stun.BINDING_REQUEST, TXID)
    w.add_bytes(stun.USERNAME, "evtj:h6vY")
    w.add_u32(stun.PRIORITY, 0x6E0001FF)
    w.add_u64(stun.ICE_CONTROLLING, 0x932FF9B151263B36)
    w.add_flag(stun.USE_CANDIDATE)
    w.add_integrity(KEY)
    w.add_fingerprint()
    return bytes(w.view())


REQUEST = build_request()


def time_per_op(fn, rounds, repeats=5):
    """Best of `repeats` runs (the least disturbed by other processes)."""
    fn()
    best = None
    for _ in range(repeats):
        start = now_us()
        for _ in range(rounds):
            fn()
        took = (now_us() - start) / rounds
        best = took if best is None else min(best, took)
    return best


def ours():
    msg = stun.Message()
    writer = stun.Writer(bytearray(548))

    def parse_and_verify():
        msg.parse(REQUEST)
        if not (msg.check_fingerprint() and msg.check_integrity(KEY)):
            raise AssertionError("request did not verify")
        msg.get(stun.USERNAME)
        msg.get_u32(stun.PRIORITY)

    def build_and_sign():
        writer.start(stun.BINDING_SUCCESS, TXID)
        writer.add_xor_address(stun.XOR_MAPPED_ADDRESS, "192.0.2.1", 32853)
        writer.add_integrity(KEY)
        writer.add_fingerprint()
        return writer.view()

    return parse_and_verify, build_and_sign


def aioice_ops():
    from aioice import stun as astun

    def parse_and_verify():
        msg = astun.parse_message(REQUEST)  # checks FINGERPRINT itself
        if not msg.check_message_integrity(KEY):
            raise AssertionError("request did not verify")
        msg.attributes["USERNAME"]
        msg.attributes["PRIORITY"]

    def build_and_sign():
        msg = astun.Message(
            message_method=astun.Method.BINDING,
            message_class=astun.Class.RESPONSE,
            transaction_id=TXID,
        )
        msg.attributes["XOR-MAPPED-ADDRESS"] = ("192.0.2.1", 32853)
        msg.add_message_integrity(KEY)
        msg.add_fingerprint()
        return bytes(msg)

    return parse_and_verify, build_and_sign


def main():
    rounds = 1000 if sys.implementation.name == "micropython" else 10000
    runtime = "%s %s" % (sys.implementation.name, ".".join(str(v) for v in sys.implementation.version[:3]))
    rows = [("ours", ours())]  # type: list
    try:
        rows.append(("aioice", aioice_ops()))
    except ImportError:
        pass
    print("STUN codec, %s, best of 5 x %d rounds (µs/op)" % (runtime, rounds))
    print("%-8s %20s %20s" % ("", "parse+authenticate", "build+sign"))
    results = {}
    for name, (parse, build) in rows:
        results[name] = (time_per_op(parse, rounds), time_per_op(build, rounds))
        print("%-8s %20.2f %20.2f" % (name, results[name][0], results[name][1]))
    if "aioice" in results:
        a, b = results["ours"], results["aioice"]
        print("%-8s %19.2fx %19.2fx" % ("ratio", a[0] / b[0], a[1] / b[1]))


main()
