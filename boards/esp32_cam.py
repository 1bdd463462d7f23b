# AI-Thinker ESP32-CAM: ESP32 (ESP32-S module), OV2640, 4 MB PSRAM, 4 MB flash.
# No USB: flash and deploy through a 3.3 V USB-serial adapter (/dev/ttyUSB*),
# GPIO0 held to GND while resetting to enter the bootloader.
# Copied to the board as /board.py by `make deploy BOARD=esp32_cam`; the
# fields are described in boards/README.md.
#
# Camera pins: CAMERA_MODEL_AI_THINKER in espressif/arduino-esp32,
# libraries/ESP32/examples/Camera/CameraWebServer/camera_pins.h; the same map
# is BOARD_ESP32CAM_AITHINKER in the driver's own example, espressif/esp32-camera
# examples/camera_example/main/camera_pinout.h (CAM_PIN_*).
# GPIO 34/35/36/39 (data) are input-only, which is all they need to be.

NAME = "AI-Thinker ESP32-CAM"
CHIP = "esp32"
FLASH_OFFSET = 0x1000  # MicroPython's ESP32 image starts with the bootloader at 0x1000

CAMERA = {
    "sensor": "OV2640",
    "pwdn": 32,
    "reset": -1,  # not wired: the driver resets the sensor over SCCB
    "xclk": 0,
    "sioc": 27,  # SCCB clock (SCL)
    "siod": 26,  # SCCB data (SDA)
    "d0": 5,  # Y2
    "d1": 18,  # Y3
    "d2": 19,  # Y4
    "d3": 21,  # Y5
    "d4": 36,  # Y6
    "d5": 39,  # Y7
    "d6": 34,  # Y8
    "d7": 35,  # Y9
    "vsync": 25,
    "href": 23,
    "pclk": 22,
    "xclk_freq": 20000000,
    "frame_size": "QVGA",  # 320x240: an ESP32 chunks ~10 kB JPEGs comfortably
    "jpeg_quality": 80,  # percent, higher is better (esp32-camera's 0-63 scale: ~12)
    "fb_count": 2,
    "psram": True,  # frame buffers in PSRAM
}
PSRAM = True
POWER_HOLD_PIN = None

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
HEAP_HINT = 2 * 1024 * 1024  # of the 4 MB PSRAM, after the frame buffers
