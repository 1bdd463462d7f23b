# Portable test runner: works under the MicroPython unix port and CPython.
#
#   micropython host_tests/mp_run.py [--mpy DIR] host_tests/test_a.py ...
#
# With --mpy, modules are imported from DIR first: the `.mpy` builds that
# `make test-micropython` makes of lib/ice and host_tests, as a board would
# load them (compiling source on the device needs far more heap).
#
# Imports each file as a module, calls every callable attribute named test_*
# (sorted by name), and ends with the line "N passed, N failed".
# Exit status is 1 if any test failed or no test ran.
import gc
import sys

try:
    from sys import print_exception  # MicroPython
except ImportError:
    import traceback

    def print_exception(e):
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def _split(path):
    # (directory, file name) without os.path, which MicroPython lacks.
    i = path.rfind("/")
    if i < 0:
        return ".", path
    return path[:i] or "/", path[i + 1 :]


def _add_path(p):
    if p not in sys.path:
        sys.path.insert(0, p)


def _heap_free():
    gc.collect()
    return gc.mem_free() if hasattr(gc, "mem_free") else "n/a"


def _fail(label, e):
    print_exception(e)
    print("FAIL %s: %s: %s" % (label, type(e).__name__, e))


def run_module(path):
    """Run one test file; return (passed, failed)."""
    folder, fname = _split(path)
    name = fname[:-3] if fname.endswith(".py") else fname
    _add_path(folder)
    try:
        mod = __import__(name)
    except Exception as e:
        _fail(name + " (import)", e)
        print("%s: import failed, heap free %s" % (name, _heap_free()))
        return 0, 1
    tests = sorted(n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n)))
    passed = failed = 0
    for t in tests:
        gc.collect()
        try:
            getattr(mod, t)()
            passed += 1
        except Exception as e:
            failed += 1
            _fail(name + "." + t, e)
    del mod
    sys.modules.pop(name, None)
    print("%s: %d tests, heap free %s" % (name, len(tests), _heap_free()))
    return passed, failed


def main(args):
    here = _split(__file__)[0]
    for folder in ("/../lib", "/../firmware", "/../boards", "/../tools", ""):  # as conftest.py does
        _add_path(here + folder)
    mpy_dir = None
    if args[:1] == ["--mpy"]:
        mpy_dir, args = args[1], args[2:]
    passed = failed = 0
    for p in args:
        _add_path(_split(p)[0])
        if mpy_dir:
            if mpy_dir in sys.path:
                sys.path.remove(mpy_dir)
            sys.path.insert(0, mpy_dir)
        a, b = run_module(p)
        passed += a
        failed += b
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
