# M5Stack Timer Camera / Timer Camera X (U082, U082-X): ESP32-D0WDQ6-V3,
# OV3660, 8 MB PSRAM (an ESP32 maps 4 MB of it), 4 MB flash, USB-C through
# a USB-serial bridge (/dev/ttyUSB*). Both versions share the pin map.
# Copied to the board as /board.py by `make deploy BOARD=m5stack_timer_camera`;
# the fields are described in boards/README.md.
#
# Camera pins: the "Camera Interface PinMap" tables in m5stack/TimerCam-arduino's
# README and m5stack/m5-docs docs/en/unit/timercam_x.md (which also give
# BAT_HOLD = IO33, BAT_ADC = IO38, LED = IO2); the same map is
# CAMERA_MODEL_M5STACK_PSRAM in espressif/arduino-esp32's
# CameraWebServer/camera_pins.h.

NAME = "M5Stack Timer Camera"
CHIP = "esp32"
FLASH_OFFSET = 0x1000  # MicroPython's ESP32 image starts with the bootloader at 0x1000

CAMERA = {
    "sensor": "OV3660",
    "pwdn": -1,
    "reset": 15,
    "xclk": 27,
    "sioc": 23,  # SCCB clock (SCL)
    "siod": 25,  # SCCB data (SDA)
    "d0": 32,  # Y2
    "d1": 35,  # Y3
    "d2": 34,  # Y4
    "d3": 5,  # Y5
    "d4": 39,  # Y6
    "d5": 18,  # Y7
    "d6": 36,  # Y8
    "d7": 19,  # Y9
    "vsync": 22,
    "href": 26,
    "pclk": 21,
    "xclk_freq": 20000000,
    "frame_size": "QVGA",  # 320x240: an ESP32 chunks ~10 kB JPEGs comfortably
    "jpeg_quality": 80,  # percent, higher is better (esp32-camera's 0-63 scale: ~12)
    "fb_count": 2,
    "psram": True,  # frame buffers in PSRAM
}
PSRAM = True
# On battery the board stays powered only while this pin is driven high
# (BAT_HOLD); boot code should set it before anything slow.
POWER_HOLD_PIN = 33

MAX_VIEWERS = 2
# Per viewer session (ice.agent.Config). max_data_size sizes the TURN relay
# buffer and the receive size: a frame chunk (8 + 1100 bytes) must fit.
ICE = {
    "max_local": 6,
    "max_remote": 12,
    "max_pairs": 24,
    "max_transactions": 12,
    "max_events": 24,
    "transmit_slots": 6,
    "max_data_size": 1200,
}
PORT_RANGE = (50000, 50099)
STUN_SERVERS = [("stun.l.google.com", 19302)]
# TURN credentials are per device: put them in firmware/secrets.py
# (TURN_SERVERS there, see firmware/secrets_example.py), never here.
TURN_SERVERS = []
FPS_MAX = 10
HEAP_HINT = 2 * 1024 * 1024  # of the 4 MB of PSRAM an ESP32 maps, after the frame buffers
