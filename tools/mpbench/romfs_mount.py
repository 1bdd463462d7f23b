"""Mount a ROMFS image file at /rom with /rom and /rom/lib first on
sys.path, as a board mounts its ROM partition (MicroPython >= 1.25). On the
unix port the image is read into the heap (one block, kept referenced); on
a board it stays in flash."""

_images = []


def mount_romfs(path):
    import sys

    import vfs

    with open(path, "rb") as f:
        image = bytearray(f.seek(0, 2))  # one block: no growing copies while reading
        f.seek(0)
        f.readinto(image)
    _images.append(image)
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom/lib")
    sys.path.insert(0, "/rom")
    return len(image)
