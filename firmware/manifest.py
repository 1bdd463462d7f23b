# Frozen-module manifest: a MicroPython image with the `ice` library, `camlink`
# and the camera app (`cam`) compiled into flash, so they import without a filesystem
# copy and their bytecode runs from flash instead of the heap.
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=/path/to/repo/firmware/manifest.py
#
# (see firmware/README.md). Relative paths here are resolved against this
# file's folder, whatever the build's working directory; $(PORT_DIR) is the
# MicroPython port being built (ports/esp32).
#
# boot.py, main.py, board.py and secrets.py stay on the filesystem (`make
# deploy` copies them): they differ per board and per device.

# Everything the port freezes by default (asyncio, network helpers, ...).
include("$(PORT_DIR)/boards/manifest.py")

# lib/ice/**/*.py -> ice/..., lib/camlink/**/*.py -> camlink/...,
# firmware/cam/**/*.py -> cam/... (tools/packages.py lists the same three)
package("ice", base_path="../lib")
package("camlink", base_path="../lib")
package("webrtc", base_path="../lib")
package("cam", base_path=".")
