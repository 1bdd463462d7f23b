"""Every boards/*.py settings module defines every field, with sane types and
ranges, pins that fit its chip, and an ICE dict that ice.agent.Config takes.
Portable: runs under CPython (pytest) and the MicroPython unix port (mp_run.py)."""

import gc
import os
import sys

from ice.agent import Agent, Config
from ice.compat import is_ip

BOARDS = ("esp32_cam", "esp32_s3_eye", "xiao_esp32s3_sense", "m5stack_timer_camera", "esp32_generic", "unix")
FIELDS = ("NAME", "CHIP", "FLASH_OFFSET", "CAMERA", "PSRAM", "POWER_HOLD_PIN", "MAX_VIEWERS", "ICE",
          "PORT_RANGE", "STUN_SERVERS", "TURN_SERVERS", "FPS_MAX", "HEAP_HINT")
ICE_KEYS = ("max_local", "max_remote", "max_pairs", "max_transactions", "max_events", "transmit_slots",
            "max_data_size")
PIN_KEYS = ("pwdn", "reset", "xclk", "sioc", "siod", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7",
            "vsync", "href", "pclk")
OUTPUT_PINS = ("pwdn", "reset", "xclk", "sioc", "siod")  # driven (or open-drain) by the chip
CAMERA_KEYS = PIN_KEYS + ("sensor", "xclk_freq", "frame_size", "jpeg_quality", "fb_count", "psram")
# esp32-camera's framesize_t names, without FRAMESIZE_.
FRAME_SIZES = ("96X96", "QQVGA", "QCIF", "HQVGA", "240X240", "QVGA", "CIF", "HVGA", "VGA", "SVGA",
               "XGA", "HD", "SXGA", "UXGA")
FLASH_OFFSETS = {"esp32": 0x1000, "esp32s3": 0x0, None: None}
MAX_GPIO = {"esp32": 39, "esp32s3": 48}
# Pins a camera must leave alone: the SPI flash (and on boards with PSRAM,
# the PSRAM) bus. ESP32: GPIO 6-11 flash, 16/17 PSRAM on WROVER-style modules;
# ESP32-S3: GPIO 26-32 flash, 33-37 octal PSRAM. ESP32 GPIO 34-39 are inputs only.
RESERVED = {"esp32": (6, 7, 8, 9, 10, 11, 16, 17), "esp32s3": (26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37)}
INPUT_ONLY = {"esp32": (34, 35, 36, 37, 38, 39), "esp32s3": ()}


def _here():
    f = globals().get("__file__", "")
    return f.rsplit("/", 1)[0] if "/" in f else "."


def _find_dir(name, marker):
    """The directory `name` (boards/, firmware/) that holds `marker`, found on
    sys.path or next to this file (the source in host_tests/, or a compiled
    copy in build/<dir>/ when mp_run.py runs with --mpy), then put on sys.path."""
    for p in sys.path + [_here() + "/../" + name, _here() + "/../../" + name, name]:
        try:
            if marker in os.listdir(p or "."):
                if p not in sys.path:
                    sys.path.append(p)
                return p
        except OSError:
            pass
    raise AssertionError("cannot find %s/ (with %s) from %r" % (name, marker, sys.path))


def _frame_datagram():
    """The largest frame datagram (firmware/PROTOCOL.md): header + chunk."""
    _find_dir("firmware", "cam")
    from camlink import framing

    return framing.HEADER_SIZE + framing.MAX_CHUNK


def _load(name):
    _find_dir("boards", "esp32_cam.py")
    mod = __import__(name)
    sys.modules.pop(name, None)  # each check starts fresh and frees it after
    return mod


def _each_board(check):
    for name in BOARDS:
        try:
            check(name, _load(name))
        except AssertionError as e:
            raise AssertionError("boards/%s.py: %s" % (name, e))
        gc.collect()


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def test_every_board_file_is_checked():
    files = sorted(f[:-3] for f in os.listdir(_find_dir("boards", "esp32_cam.py")) if f.endswith(".py"))
    assert files == sorted(BOARDS), files


def test_every_field_is_defined():
    def check(name, b):
        for field in FIELDS:
            assert hasattr(b, field), "missing " + field

    _each_board(check)


def test_chip_flash_offset_and_identity():
    def check(name, b):
        assert isinstance(b.NAME, str) and b.NAME, "NAME"
        assert b.CHIP in FLASH_OFFSETS, "CHIP %r" % b.CHIP
        assert b.FLASH_OFFSET == FLASH_OFFSETS[b.CHIP], "FLASH_OFFSET %r for %r" % (b.FLASH_OFFSET, b.CHIP)
        assert isinstance(b.PSRAM, bool), "PSRAM"
        if b.CHIP is None:  # the unix port: nothing to flash, no hardware
            assert b.CAMERA is None and b.POWER_HOLD_PIN is None and not b.PSRAM
        if b.POWER_HOLD_PIN is not None:
            assert _is_int(b.POWER_HOLD_PIN) and 0 <= b.POWER_HOLD_PIN <= MAX_GPIO[b.CHIP], "POWER_HOLD_PIN"

    _each_board(check)


def test_camera_pins_fit_the_chip():
    def check(name, b):
        cam = b.CAMERA
        if cam is None:
            return
        assert b.PSRAM, "a camera needs PSRAM for its frame buffers"
        for key in CAMERA_KEYS:
            assert key in cam, "CAMERA lacks " + key
        for key in cam:
            assert key in CAMERA_KEYS, "CAMERA has unknown key " + key
        used = []
        for key in PIN_KEYS:
            pin = cam[key]
            assert _is_int(pin) and -1 <= pin <= MAX_GPIO[b.CHIP], "%s=%r" % (key, pin)
            if pin == -1:
                assert key in ("pwdn", "reset"), key + " must be wired"
                continue
            assert pin not in used, "GPIO %d used twice" % pin
            used.append(pin)
            assert pin not in RESERVED[b.CHIP], "%s=%d is a flash/PSRAM pin" % (key, pin)
            if key in OUTPUT_PINS:
                assert pin not in INPUT_ONLY[b.CHIP], "%s=%d is input-only" % (key, pin)
        assert b.POWER_HOLD_PIN not in used, "POWER_HOLD_PIN is a camera pin"

    _each_board(check)


def test_camera_capture_settings():
    def check(name, b):
        cam = b.CAMERA
        if cam is None:
            return
        assert isinstance(cam["sensor"], str) and cam["sensor"], "sensor"
        assert _is_int(cam["xclk_freq"]) and 8000000 <= cam["xclk_freq"] <= 24000000, "xclk_freq"
        assert cam["frame_size"] in FRAME_SIZES, "frame_size %r" % cam["frame_size"]
        # Percent, higher is better (micropython-camera-API's scale). Above ~84
        # (under 10 on esp32-camera's 0-63 scale) OV2640 JPEGs can outgrow
        # the frame buffer.
        assert _is_int(cam["jpeg_quality"]) and 30 <= cam["jpeg_quality"] <= 84, "jpeg_quality"
        assert _is_int(cam["fb_count"]) and 1 <= cam["fb_count"] <= 3, "fb_count"
        assert cam["psram"] is b.PSRAM, "psram (frame buffers in PSRAM) must match PSRAM"

    _each_board(check)


def test_ice_caps_are_accepted_by_config():
    need = _frame_datagram()

    def check(name, b):
        ice = b.ICE
        assert sorted(ice) == sorted(ICE_KEYS), "ICE keys %r" % sorted(ice)
        for key in ICE_KEYS:
            assert _is_int(ice[key]) and ice[key] > 0, key
        assert ice["max_local"] >= 3, "host, server-reflexive and relayed candidates"
        assert ice["max_pairs"] <= ice["max_local"] * ice["max_remote"], "max_pairs beyond local x remote"
        # The TURN relay buffer and the receive size follow max_data_size: a whole frame chunk must fit.
        assert ice["max_data_size"] >= need, "max_data_size < %d, the largest frame datagram" % need
        config = Config(**ice)
        for key in ICE_KEYS:
            assert getattr(config, key) == ice[key], key
        Agent(True, config)  # allocates its tables and buffers

    _each_board(check)


def test_caps_fit_the_heap():
    def check(name, b):
        assert _is_int(b.HEAP_HINT) and b.HEAP_HINT >= 64 * 1024, "HEAP_HINT"
        assert _is_int(b.MAX_VIEWERS) and 1 <= b.MAX_VIEWERS <= 8, "MAX_VIEWERS"
        assert _is_int(b.FPS_MAX) and 1 <= b.FPS_MAX <= 30, "FPS_MAX"
        if b.CHIP is not None and not b.PSRAM:
            assert b.MAX_VIEWERS == 1, "one viewer without PSRAM"
            assert b.ICE["transmit_slots"] <= 4 and b.ICE["max_pairs"] <= 16, "small tables without PSRAM"
        # Per session: the transmit slots (STUN messages of the default size)
        # and a TURN relay buffer, preallocated; all sessions together must
        # leave most of the heap to the app.
        ice = b.ICE
        config = Config(**ice)
        per_session = ice["transmit_slots"] * config.buffer_size + ice["max_data_size"] + 52
        assert per_session * b.MAX_VIEWERS <= b.HEAP_HINT // 8, "ICE buffers take over 1/8 of the heap"

    _each_board(check)


def test_network_settings():
    def check(name, b):
        low, high = b.PORT_RANGE
        assert _is_int(low) and _is_int(high) and 1024 <= low <= high <= 65535, "PORT_RANGE"
        # A session binds a host socket, a TURN socket and an mDNS query socket.
        assert high - low + 1 >= 4 * b.MAX_VIEWERS, "PORT_RANGE too small for MAX_VIEWERS"
        assert isinstance(b.STUN_SERVERS, list), "STUN_SERVERS"
        for server in b.STUN_SERVERS:
            host, port = server
            assert isinstance(host, str) and host and _is_int(port) and 0 < port < 65536, server
        # Credentials never live in a board file (firmware/secrets.py has them).
        assert b.TURN_SERVERS == [], "TURN_SERVERS must be empty: put credentials in firmware/secrets.py"
        for server in getattr(b, "DNS_SERVERS", None) or []:
            assert is_ip(server), "DNS_SERVERS holds addresses, not %r" % (server,)

    _each_board(check)
