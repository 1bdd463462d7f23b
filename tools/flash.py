#!/usr/bin/env python3
"""Erase a board and write a MicroPython firmware image to it, with esptool.

    make flash BOARD=esp32_cam FIRMWARE=path/to/firmware.bin PORT=/dev/ttyUSB0 [DRY_RUN=1]
    .venv/bin/python tools/flash.py --board esp32_cam --firmware fw.bin --port /dev/ttyUSB0 [--dry-run]

Runs, for the board's CHIP and FLASH_OFFSET (boards/<BOARD>.py):

    .venv/bin/esptool --chip CHIP --port PORT erase-flash
    .venv/bin/esptool --chip CHIP --port PORT --baud 460800 write-flash -z FLASH_OFFSET FIRMWARE

Erasing wipes the board's filesystem too: `make deploy` afterwards. Before
erasing anything, the image is checked to be an ESP image (magic byte 0xE9)
built for the board's chip, so a wrong download never leaves a blank board.

`--dry-run` prints the commands, one per line, and runs nothing. Exit status
2: bad or missing arguments, no such port or firmware file, a board without
a chip (unix), or an image for another chip; otherwise that of the first
command that failed.
"""

import argparse
import os
import sys

from deploy import UsageError, board_names, check_port, load_board, run, shown

ESPTOOL = ".venv/bin/esptool"
BAUD = 460800
_IMAGE_MAGIC = 0xE9
# esptool's IMAGE_CHIP_ID per chip: a uint16 at offset 12 of an image header.
_CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9, "esp32c2": 12, "esp32c6": 13,
             "esp32h2": 16, "esp32p4": 18}


def check_image(path, chip):
    """Refuse a file that is not an ESP image for `chip`."""
    if not os.path.isfile(path):
        raise UsageError("firmware %s does not exist" % path)
    with open(path, "rb") as f:
        header = f.read(16)
    if len(header) < 16 or header[0] != _IMAGE_MAGIC:
        raise UsageError("%s is not an ESP firmware image (no 0xE9 magic byte): download the .bin for %s"
                         % (path, chip))
    image_chip = header[12] | header[13] << 8
    if image_chip != _CHIP_IDS[chip]:
        names = [name for name, n in _CHIP_IDS.items() if n == image_chip]
        raise UsageError("%s is an image for %s, not %s: download the %s build"
                         % (path, names[0] if names else "chip id %d" % image_chip, chip, chip))


def plan(board, port, firmware):
    """The commands that flash `firmware` for `board` through `port`."""
    esptool = [ESPTOOL, "--chip", board.CHIP, "--port", port]
    return [
        esptool + ["erase-flash"],
        esptool + ["--baud", str(BAUD), "write-flash", "-z", "0x%x" % board.FLASH_OFFSET, shown(firmware)],
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", default="", help="serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--board", default="", help="a boards/*.py name: " + ", ".join(board_names()))
    parser.add_argument("--firmware", default="", help="the MicroPython .bin to write")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    usage = "make flash BOARD=%s FIRMWARE=firmware.bin PORT=/dev/ttyUSB0" % (args.board or "esp32_cam")
    try:
        board = load_board(args.board)
        if board.CHIP is None:
            raise UsageError("board %r has no chip to flash (it is the MicroPython unix port on this machine)"
                             % args.board)
        check_port(args.port, args.dry_run, usage)
        if not args.firmware:
            raise UsageError("FIRMWARE is required, e.g. `%s`: a MicroPython image for %s (with a camera "
                             "driver for camera boards; see firmware/README.md)" % (usage, board.CHIP))
        if not args.dry_run:
            check_image(args.firmware, board.CHIP)
        commands = plan(board, args.port, args.firmware)
    except UsageError as e:
        print("flash: %s" % e, file=sys.stderr)
        return 2
    rc = run(commands, args.dry_run)
    if rc == 0 and not args.dry_run:
        print("flash: done; now copy the app: make deploy PORT=%s BOARD=%s" % (args.port, args.board),
              file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
