# Portable test runner: works under the MicroPython unix port and CPython.
#
#   micropython host_tests/mp_run.py host_tests/test_a.py host_tests/test_b.py
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


def main(paths):
    here = _split(__file__)[0]
    _add_path(here + "/../lib")
    _add_path(here)
    passed = failed = 0
    for p in paths:
        a, b = run_module(p)
        passed += a
        failed += b
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
