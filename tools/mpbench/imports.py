"""Heap kept by importing each module, in order, after gc.collect():

    micropython -m imports MODULE,MODULE,... [ROMFS_IMAGE]

prints `IMPORT module bytes` per module and `TOTAL bytes`."""

import gc
import sys

from romfs_mount import mount_romfs


def load(name):  # in a function: nothing of the import stays on the module's globals
    __import__(name)


def main():
    mods = sys.argv[1].split(",")
    if len(sys.argv) > 2:
        mount_romfs(sys.argv[2])
    gc.collect()
    start = gc.mem_alloc()
    for name in mods:
        before = gc.mem_alloc()
        load(name)
        gc.collect()
        print("IMPORT", name, gc.mem_alloc() - before)
    gc.collect()
    print("TOTAL", gc.mem_alloc() - start)


main()
