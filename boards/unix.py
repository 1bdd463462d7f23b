# The MicroPython unix port on a host: `micropython -X heapsize=512K
# firmware/main.py --board unix ...` (firmware/main.py puts boards/ on
# sys.path there). No chip, no flash, no camera: the app streams synthetic
# frames. The fields are described in boards/README.md.

NAME = "MicroPython unix port"
CHIP = None
FLASH_OFFSET = None

CAMERA = None
PSRAM = False
POWER_HOLD_PIN = None

MAX_VIEWERS = 4
# Per viewer session (ice.agent.Config): the tables of an ESP32 without
# PSRAM (boards/esp32_generic.py), so host runs and the bench see a board's
# heap; datagrams of up to 1200 bytes (a frame chunk is 8 + 1100):
# max_data_size sizes the TURN relay buffer and the receive size.
ICE = {
    "max_local": 4,
    "max_remote": 8,
    "max_pairs": 16,
    "max_transactions": 8,
    "max_events": 16,
    "transmit_slots": 4,
    "max_data_size": 1200,
}
PORT_RANGE = (50000, 50999)
# Host runs are mostly loopback and LAN tests, which must not wait on the
# Internet; add a server, e.g. ("stun.l.google.com", 19302), to meet
# viewers across NATs.
STUN_SERVERS = []
# TURN credentials go in firmware/secrets.py (TURN_SERVERS), never here.
TURN_SERVERS = []
FPS_MAX = 15
HEAP_HINT = 512 * 1024  # the -X heapsize to run it with
