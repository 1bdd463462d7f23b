#!/usr/bin/env python3
"""Build a ROMFS image of the library and the camera app (MicroPython >= 1.25).

    make romfs [MPY_ARCH=host]
    .venv/bin/python tools/romfs.py [--arch xtensawin] [--board NAME] [--name NAME] [-o OUT]

A board with a ROMFS partition mounts the image at /rom and puts /rom and
/rom/lib on sys.path; .mpy files there run in place from flash instead of
being copied into the heap. The image holds:

    lib/ice/*.mpy        lib/ice/*.py, compiled with mpy-cross -march=ARCH
    lib/camlink/*.mpy    lib/camlink/*.py, likewise
    lib/webrtc/*.mpy     lib/webrtc/*.py, likewise
    lib/cam/*.mpy        firmware/cam/*.py, likewise
    board.mpy        boards/<BOARD>.py, only with --board

It is staged in build/romfs/<name>/ and written to build/romfs/<name>.romfs
(name: the board, else the arch) by `mpremote romfs -o OUT --no-mpy build`.
`make deploy ROMFS=1` (tools/deploy.py --romfs) builds one per board, without
board.mpy (board.py stays on the filesystem), and writes it with `mpremote
romfs deploy`. On the unix port, `firmware/main.py --romfs FILE` mounts an
image file the same way (arch host: this machine's).
"""

import argparse
import os
import shutil
import subprocess
import sys

import packages

ROOT = packages.ROOT
MPY_CROSS = packages.MPY_CROSS
MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
OUT_DIR = os.path.join(ROOT, "build", "romfs")

def build(arch="xtensawin", board=None, name=None, out=None, stage=None):
    """Compile into the staging folder and write the image; returns its path."""
    name = name or board or arch
    stage = stage or os.path.join(OUT_DIR, name)
    out = out or os.path.join(OUT_DIR, name + ".romfs")
    shutil.rmtree(stage, ignore_errors=True)
    files = [("%s/%s.py" % (folder, name), "lib/%s/%s.mpy" % (package, name))
             for package, folder in packages.DEVICE_PACKAGES for name in packages.modules(folder)]
    if board:
        files.append(("boards/%s.py" % board, "board.mpy"))
    for src, dst in files:
        target = os.path.join(stage, dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # -s: the name tracebacks show (ice/agent.py, not the host path)
        shown = dst[4:-4] + ".py" if dst.startswith("lib/") else os.path.basename(src)
        subprocess.run([MPY_CROSS, "-march=" + arch, "-s", shown, "-o", target, os.path.join(ROOT, src)],
                       check=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    r = subprocess.run([MPREMOTE, "romfs", "-o", out, "--no-mpy", "build", stage],
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.path.isfile(out):
        raise RuntimeError("mpremote romfs build failed: %s" % (r.stdout + r.stderr).strip())
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="xtensawin",
                        help="mpy-cross -march: xtensawin (ESP32, ESP32-S3), host (the unix port here)")
    parser.add_argument("--board", help="also add boards/BOARD.py as /board.mpy")
    parser.add_argument("--name", help="image name (default: the board, else the arch)")
    parser.add_argument("-o", "--output", help="image file (default build/romfs/NAME.romfs)")
    args = parser.parse_args(argv)
    if args.board and not os.path.isfile(os.path.join(ROOT, "boards", args.board + ".py")):
        parser.error("no boards/%s.py" % args.board)
    try:
        out = build(args.arch, args.board, args.name, args.output)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print("romfs: %s" % e, file=sys.stderr)
        return 1
    print("%s: %d bytes, for %s" % (os.path.relpath(out), os.path.getsize(out), args.arch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
