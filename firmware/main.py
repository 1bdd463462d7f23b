"""Camera entry point: on a board, `main.py` at the root of the filesystem;
on a host, `micropython firmware/main.py --signaling [tls://]HOST:PORT --room NAME
[--board unix] [--seconds N] [--interface IP] [--romfs IMAGE]`.

`--romfs` mounts a ROMFS image file (tools/romfs.py --arch host) at /rom with
/rom and /rom/lib first on sys.path, as a board mounts its ROM partition;
here the image sits in the heap, where a board maps it from flash.

Settings come from `board.py` (a copy of boards/<board>.py) and
`secrets.py` (Wi-Fi, signaling address, room, TURN credentials; see
secrets_example.py). Arguments override them on a host.
"""

import sys

if sys.platform == "linux":  # a host: the repo's folders stand in for the board's /lib
    # sys.path[0] is this script's folder; .mpy builds on MICROPYPATH go
    # before the sources, as frozen code does on a board.
    _here = sys.path.pop(0)
    for _path in ("/../lib", "/../firmware", "/../boards"):
        if _here + _path not in sys.path:
            sys.path.append(_here + _path)
    if "--romfs" in sys.argv:
        import vfs

        with open(sys.argv[sys.argv.index("--romfs") + 1], "rb") as _f:
            _image = bytearray(_f.seek(0, 2))  # one block: no growing copies while reading
            _f.seek(0)
            _f.readinto(_image)
        vfs.mount(vfs.VfsRom(_image), "/rom")
        sys.path.insert(0, "/rom/lib")
        sys.path.insert(0, "/rom")

from cam.camera_source import open_source


def _settings():
    """Board module, secrets module (or None) and overrides from argv."""
    args = {}
    argv = sys.argv[1:]
    for i in range(0, len(argv) - 1, 2):
        if argv[i].startswith("--"):
            args[argv[i][2:]] = argv[i + 1]
    board = __import__(args.get("board", "board"))
    try:
        import secrets
    except ImportError:
        secrets = None
    return board, secrets, args


def main():
    board, secrets, args = _settings()
    # The camera before the app's imports: its frame buffer is the largest
    # block the app keeps, placed while the heap has no holes yet (a board's
    # driver claims its buffers at start too).
    source = open_source(board.CAMERA, 320, 240)
    import asyncio

    from cam.app import from_settings
    from camlink.signal import SignalingError

    app, url = from_settings(board, secrets, args, source)
    seconds = args.get("seconds")
    try:
        asyncio.run(app.run(None if seconds is None else int(seconds) * 1000))
    except (OSError, SignalingError) as e:
        print("camera: signaling %s: %s" % (url, e))
        sys.exit(1)

main()
