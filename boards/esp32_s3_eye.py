# Espressif ESP32-S3-EYE: ESP32-S3, OV2640, 8 MB octal PSRAM, 8 MB flash,
# native USB (/dev/ttyACM*). Also has an LCD, microphone, SD slot and IMU,
# none of which the camera app uses.
# Copied to the board as /board.py by `make deploy BOARD=esp32_s3_eye`; the
# fields are described in boards/README.md.
#
# Camera pins: espressif/esp-bsp, bsp/esp32_s3_eye/include/bsp/esp32_s3_eye.h
# (BSP_CAMERA_* and the shared I2C bus BSP_I2C_SDA=4 / BSP_I2C_SCL=5 the
# OV2640 sits on); the same map is CAMERA_MODEL_ESP32S3_EYE in
# espressif/arduino-esp32's CameraWebServer/camera_pins.h. The BSP's default
# camera config runs XCLK at 16 MHz, which lets the driver use EDMA to PSRAM.

NAME = "Espressif ESP32-S3-EYE"
CHIP = "esp32s3"
FLASH_OFFSET = 0x0  # ESP32-S3 images start with the bootloader at 0x0

CAMERA = {
    "sensor": "OV2640",
    "pwdn": -1,
    "reset": -1,
    "xclk": 15,
    "sioc": 5,  # SCCB clock (SCL)
    "siod": 4,  # SCCB data (SDA)
    "d0": 11,  # Y2
    "d1": 9,  # Y3
    "d2": 8,  # Y4
    "d3": 10,  # Y5
    "d4": 12,  # Y6
    "d5": 18,  # Y7
    "d6": 17,  # Y8
    "d7": 16,  # Y9
    "vsync": 6,
    "href": 7,
    "pclk": 13,
    "xclk_freq": 16000000,
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
