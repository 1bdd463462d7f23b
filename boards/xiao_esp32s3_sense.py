# Seeed Studio XIAO ESP32S3 Sense: ESP32-S3R8 (8 MB octal PSRAM), 8 MB flash,
# OV2640 on the detachable Sense board, native USB (/dev/ttyACM*).
# Copied to the board as /board.py by `make deploy BOARD=xiao_esp32s3_sense`;
# the fields are described in boards/README.md.
#
# Camera pins: CAMERA_MODEL_XIAO_ESP32S3 in espressif/arduino-esp32,
# libraries/ESP32/examples/Camera/CameraWebServer/camera_pins.h; the same map
# is BOARD_ESP32S3_XIAO in espressif/esp32-camera
# examples/camera_example/main/camera_pinout.h and the XIAO Sense example in
# cnadler86/micropython-camera-API's README (MICROPY_CAMERA_PIN_*).

NAME = "Seeed XIAO ESP32S3 Sense"
CHIP = "esp32s3"
FLASH_OFFSET = 0x0  # ESP32-S3 images start with the bootloader at 0x0

CAMERA = {
    "sensor": "OV2640",
    "pwdn": -1,
    "reset": -1,
    "xclk": 10,
    "sioc": 39,  # SCCB clock (SCL)
    "siod": 40,  # SCCB data (SDA)
    "d0": 15,  # Y2
    "d1": 17,  # Y3
    "d2": 18,  # Y4
    "d3": 16,  # Y5
    "d4": 14,  # Y6
    "d5": 12,  # Y7
    "d6": 11,  # Y8
    "d7": 48,  # Y9
    "vsync": 38,
    "href": 47,
    "pclk": 13,
    "xclk_freq": 20000000,
    "frame_size": "VGA",
    "jpeg_quality": 80,  # percent, higher is better (esp32-camera's 0-63 scale: ~12)
    "fb_count": 2,
    "psram": True,  # frame buffers in PSRAM
}
PSRAM = True
POWER_HOLD_PIN = None

MAX_VIEWERS = 3
# Per viewer session (ice.agent.Config): the library's defaults, with
# datagrams of up to 1200 bytes (a frame chunk is 8 + 1100): max_data_size
# sizes the TURN relay buffer and the receive size.
ICE = {
    "max_local": 8,
    "max_remote": 16,
    "max_pairs": 32,
    "max_transactions": 16,
    "max_events": 32,
    "transmit_slots": 8,
    "max_data_size": 1200,
}
PORT_RANGE = (50000, 50099)
STUN_SERVERS = [("stun.l.google.com", 19302)]
# TURN credentials are per device: put them in firmware/secrets.py
# (TURN_SERVERS there, see firmware/secrets_example.py), never here.
TURN_SERVERS = []
FPS_MAX = 10
HEAP_HINT = 4 * 1024 * 1024  # of the 8 MB PSRAM, after the frame buffers
