"""Where frames come from: the board's camera through the ESP32 `camera`
module when there is one, else SyntheticCamera (cam/synthetic.py).

Two community drivers both call their module `camera`; feature detection
picks the API:
  lemariva/micropython-camera-driver: camera.init(0, format=camera.JPEG,
      framesize=camera.FRAME_QVGA, d0=.., xclk=.., siod=.., ...) and
      camera.capture() -> bytes (False on failure).
  cnadler86/micropython-camera-API: camera.Camera(data_pins=[..],
      pixel_format=PixelFormat.JPEG, frame_size=FrameSize.QVGA, ...) and
      cam.capture() -> memoryview into the driver's frame buffer.

A board's CAMERA dict (boards/*.py; None: no camera). Every key is
optional; a missing pin keeps the driver's built-in default:
  d0..d7, vsync, href, pclk, xclk, siod, sioc, pwdn, reset: GPIOs (-1: not wired)
  xclk_freq (Hz, 20_000_000), frame_size (esp32-camera name such as "QVGA";
  without it the size nearest below width x height), jpeg_quality (percent,
  higher is better; 80), fb_count (1), psram (frame buffers in PSRAM),
  vflip, hmirror (False); "sensor" is informational.
"""

# (width, height, name): the esp32-camera frame sizes a source can ask for.
_SIZES = (
    (96, 96, "96X96"), (160, 120, "QQVGA"), (176, 144, "QCIF"), (240, 176, "HQVGA"),
    (240, 240, "240X240"), (320, 240, "QVGA"), (400, 296, "CIF"), (480, 320, "HVGA"),
    (640, 480, "VGA"), (800, 600, "SVGA"), (1024, 768, "XGA"), (1280, 720, "HD"),
    (1280, 1024, "SXGA"), (1600, 1200, "UXGA"),
)
_PINS = (  # (board key, lemariva keyword, cnadler keyword)
    ("xclk", "xclk", "xclk_pin"),
    ("pclk", "pclk", "pclk_pin"),
    ("vsync", "vsync", "vsync_pin"),
    ("href", "href", "href_pin"),
    ("siod", "siod", "sda_pin"),
    ("sioc", "sioc", "scl_pin"),
    ("pwdn", "pwdn", "powerdown_pin"),
    ("reset", "reset", "reset_pin"),
)


def frame_size(width, height):
    """The largest esp32-camera size that fits in width x height (the
    smallest if none does): (width, height, name)."""
    best = _SIZES[0]
    for size in _SIZES:
        if size[0] <= width and size[1] <= height and size[0] * size[1] >= best[0] * best[1]:
            best = size
    return best


def driver_api(driver):
    """"lemariva", "cnadler" or None for an unknown module."""
    if hasattr(driver, "Camera") and hasattr(driver, "FrameSize"):
        return "cnadler"
    if hasattr(driver, "init") and hasattr(driver, "capture") and hasattr(driver, "JPEG"):
        return "lemariva"
    return None


def _named_size(name):
    for size in _SIZES:
        if size[2] == name:
            return size
    raise ValueError("unknown frame_size %r" % name)


def _data_pins(settings):
    if "d0" not in settings:
        return None
    return [settings["d%d" % i] for i in range(8)]


def _init_lemariva(driver, kw):
    try:
        return driver.init(0, **kw)
    except TypeError:  # older releases: pins, format and quality only
        size = kw.pop("framesize")
        for key in ("fb_size", "fb_location", "xclk_freq"):
            kw.pop(key, None)
        ok = driver.init(0, **kw)
        driver.framesize(size)
        return ok


class CameraSource:
    """The board's camera. capture() returns one JPEG frame, bytes or a
    memoryview valid until the next capture(); OSError if the driver fails."""

    def __init__(self, board_camera, width=320, height=240, driver=None):
        if driver is None:
            import camera as driver  # the ESP32 firmware's camera module
        self.api = driver_api(driver)
        if self.api is None:
            raise OSError("unknown camera driver")
        settings = board_camera or {}
        if "frame_size" in settings:
            self.width, self.height, name = _named_size(settings["frame_size"])
        else:
            self.width, self.height, name = frame_size(width, height)
        self.frame_number = 0
        self._driver = driver
        self._cam = None
        quality = max(1, min(100, settings.get("jpeg_quality", 80)))
        xclk_hz = settings.get("xclk_freq", 20000000)
        fb_count = settings.get("fb_count", 1)
        pins = _data_pins(settings)
        if self.api == "cnadler":
            kw = {
                "pixel_format": driver.PixelFormat.JPEG,
                "frame_size": getattr(driver.FrameSize, "R" + name if name[0] in "0123456789" else name),
                "jpeg_quality": quality,
                "fb_count": fb_count,
                "xclk_freq": xclk_hz,
            }
            if hasattr(driver, "GrabMode"):
                kw["grab_mode"] = driver.GrabMode.LATEST if fb_count > 1 else driver.GrabMode.WHEN_EMPTY
            if pins is not None:
                kw["data_pins"] = pins
            for key, _, kwarg in _PINS:
                if key in settings:
                    kw[kwarg] = settings[key]
            self._cam = driver.Camera(**kw)
            if settings.get("vflip"):
                self._cam.set_vflip(True)
            if settings.get("hmirror"):
                self._cam.set_hmirror(True)
        else:
            kw = {
                "format": driver.JPEG,
                "framesize": getattr(driver, "FRAME_" + name),
                "quality": max(10, min(63, (100 - quality) * 63 // 100)),  # 0-63, lower is better
                "xclk_freq": driver.XCLK_10MHz if xclk_hz < 15000000 else driver.XCLK_20MHz,
                "fb_size": fb_count,
            }
            if settings.get("psram") and hasattr(driver, "PSRAM"):
                kw["fb_location"] = driver.PSRAM
            if pins is not None:
                for i in range(8):
                    kw["d%d" % i] = pins[i]
            for key, kwarg, _ in _PINS:
                if key in settings:
                    kw[kwarg] = settings[key]
            try:
                ok = _init_lemariva(driver, dict(kw))
            except OSError:
                driver.deinit()  # a camera left initialised by an earlier run
                ok = _init_lemariva(driver, dict(kw))
            if ok is False:
                raise OSError("camera init failed")
            if settings.get("vflip"):
                driver.flip(1)
            if settings.get("hmirror"):
                driver.mirror(1)

    def capture(self):
        frame = self._cam.capture() if self._cam is not None else self._driver.capture()
        if not frame:
            raise OSError("camera capture failed")
        self.frame_number += 1
        return frame

    def close(self):
        if self._cam is not None:
            self._cam.deinit()
        else:
            self._driver.deinit()


def open_source(board_camera=None, width=320, height=240, color=True):
    """The board's camera when `board_camera` is a dict and a known `camera`
    module imports; otherwise (hosts, boards without one) a SyntheticCamera."""
    if board_camera is not None:
        try:
            import camera as driver
        except ImportError:
            driver = None
        if driver is not None and driver_api(driver) is not None:
            return CameraSource(board_camera, width, height, driver)
    from cam.synthetic import SyntheticCamera

    return SyntheticCamera(width, height, color)
