# A generic ESP32 board without a camera (e.g. ESP32-DevKitC with a WROOM
# module): no PSRAM assumed, so every table is small and one viewer at a
# time watches the app's synthetic frames. Runs MicroPython's ESP32_GENERIC.
# Copied to the board as /board.py by `make deploy BOARD=esp32_generic`; the
# fields are described in boards/README.md.

NAME = "Generic ESP32 (no camera)"
CHIP = "esp32"
FLASH_OFFSET = 0x1000  # MicroPython's ESP32 image starts with the bootloader at 0x1000

CAMERA = None
PSRAM = False
POWER_HOLD_PIN = None

MAX_VIEWERS = 1
# Per viewer session (ice.agent.Config), sized for ~100 kB of heap: a host,
# a server-reflexive and a relayed candidate plus a peer-reflexive one.
# max_data_size sizes the TURN relay buffer and the receive size: a frame
# chunk (8 + 1100 bytes) must fit.
ICE = {
    "max_local": 4,
    "max_remote": 8,
    "max_pairs": 16,
    "max_transactions": 8,
    "max_events": 16,
    "transmit_slots": 4,
    "max_data_size": 1200,
}
PORT_RANGE = (50000, 50099)
STUN_SERVERS = [("stun.l.google.com", 19302)]
# TURN credentials are per device: put them in firmware/secrets.py
# (TURN_SERVERS there, see firmware/secrets_example.py), never here.
TURN_SERVERS = []
FPS_MAX = 5
HEAP_HINT = 96 * 1024  # MicroPython's heap on an ESP32 without PSRAM, after Wi-Fi
