"""The synthetic camera's frames are baseline JPEG (ITU T.81) in JFIF, and
open_source() picks the board camera or the synthetic one. Runs on both
runtimes: a small DC-only decoder here reads the scans back."""

import gc
import sys

from cam import camera_source, synthetic
from cam.synthetic import SyntheticCamera
from helpers import raises

SOI, APP0, DQT, SOF0, DHT, SOS, EOI = 0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xD9


def parse(jpeg):
    """(markers in order, {marker: [bodies]}, scan start, scan end); checks
    that the scan holds no 0xFF other than a stuffed 0xFF 0x00 (F.1.2.3)."""
    assert jpeg[0] == 0xFF and jpeg[1] == SOI
    markers = [SOI]
    bodies = {}
    pos = 2
    while True:
        assert jpeg[pos] == 0xFF
        marker = jpeg[pos + 1]
        length = (jpeg[pos + 2] << 8) | jpeg[pos + 3]
        markers.append(marker)
        bodies.setdefault(marker, []).append(bytes(jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == SOS:
            break
    start = pos
    while True:
        if jpeg[pos] == 0xFF:
            if jpeg[pos + 1] != 0x00:
                break
            pos += 2
        else:
            pos += 1
    markers.append(jpeg[pos + 1])
    assert pos + 2 == len(jpeg), "bytes after the last marker"
    return markers, bodies, start, pos


def huffman_tables(body):
    """{Tc<<4|Th: {(1 << length) | code: symbol}} from a DHT body (B.2.4.2, C.2)."""
    tables = {}
    i = 0
    while i < len(body):
        bits = body[i + 1 : i + 17]
        count = sum(bits)
        values = body[i + 17 : i + 17 + count]
        codes = {}
        code = k = 0
        for length in range(1, 17):
            for _ in range(bits[length - 1]):
                codes[(1 << length) | code] = values[k]
                k += 1
                code += 1
            code <<= 1
        tables[body[i]] = codes
        i += 17 + count
    return tables


class Bits:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, n):
        v = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            v = (v << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def symbol(self, codes):
        code = 0
        for length in range(1, 17):
            code = (code << 1) | self.read(1)
            key = (1 << length) | code
            if key in codes:
                return codes[key]
        raise ValueError("bad Huffman code")


def decode(jpeg):
    """(width, height, planes): each component's DC values as pixel values,
    a plane being (blocks per row, bytearray in raster order); checks that
    every block is DC then EOB (F.2.2) and the scan ends in 1-bit padding."""
    markers, bodies, start, end = parse(jpeg)
    sof = bodies[SOF0][0]
    height = (sof[1] << 8) | sof[2]
    width = (sof[3] << 8) | sof[4]
    comps = [(sof[7 + 3 * i] >> 4, sof[7 + 3 * i] & 15) for i in range(sof[5])]
    tables = {}
    for body in bodies[DHT]:
        tables.update(huffman_tables(body))
    sos = bodies[SOS][0]
    selectors = [(sos[2 + 2 * i] >> 4, sos[2 + 2 * i] & 15) for i in range(sos[0])]
    raw = bytearray()
    scan = jpeg[start:end]
    i = 0
    while i < len(scan):
        raw.append(scan[i])
        i += 2 if scan[i] == 0xFF else 1
    if len(comps) == 1:
        comps = [(1, 1)]  # a one-component scan is non-interleaved (A.2.2)
    hmax = max(h for h, _ in comps)
    vmax = max(v for _, v in comps)
    mcus_x = (width + 8 * hmax - 1) // (8 * hmax)
    mcus_y = (height + 8 * vmax - 1) // (8 * vmax)
    planes = [(mcus_x * h, bytearray(mcus_x * h * mcus_y * v)) for h, v in comps]
    bits = Bits(raw)
    pred = [0] * len(comps)
    for my in range(mcus_y):
        for mx in range(mcus_x):
            for ci in range(len(comps)):
                h, v = comps[ci]
                dc = tables[selectors[ci][0]]
                ac = tables[0x10 | selectors[ci][1]]
                stride, plane = planes[ci]
                for y in range(v):
                    for x in range(h):
                        size = bits.symbol(dc)
                        diff = bits.read(size)
                        if size and diff < (1 << (size - 1)):
                            diff += (-1 << size) + 1  # EXTEND (F.2.2.1)
                        pred[ci] += diff
                        assert bits.symbol(ac) == 0x00, "AC not empty"
                        plane[(my * v + y) * stride + mx * h + x] = pred[ci] + 128
    tail = len(raw) * 8 - bits.pos
    assert 0 <= tail < 8, "scan length"
    assert bits.read(tail) == (1 << tail) - 1, "padding is not 1-bits"
    return width, height, planes


def frame_of(cam):
    return bytes(cam.capture())


def test_markers_in_order_t81_b2():
    for color in (True, False):
        jpeg = frame_of(SyntheticCamera(320, 240, color))
        markers, bodies, _, _ = parse(jpeg)
        assert markers == [SOI, APP0, DQT, SOF0, DHT, SOS, EOI]
        assert bodies[APP0][0][:5] == b"JFIF\x00"
        assert jpeg[-2:] == b"\xff\xd9"


def test_sof0_dimensions_and_sampling_b22():
    for width, height, color in ((320, 240, True), (320, 240, False), (100, 60, True), (17, 9, False)):
        _, bodies, _, _ = parse(frame_of(SyntheticCamera(width, height, color)))
        sof = bodies[SOF0][0]
        assert sof[0] == 8
        assert (sof[1] << 8) | sof[2] == height
        assert (sof[3] << 8) | sof[4] == width
        if color:
            assert sof[5] == 3 and (sof[7], sof[10], sof[13]) == (0x22, 0x11, 0x11)
        else:
            assert sof[5] == 1 and sof[7] == 0x11


def test_dqt_dc_step_is_8_b241():
    _, bodies, _, _ = parse(frame_of(SyntheticCamera(64, 64)))
    dqt = bodies[DQT][0]
    assert len(dqt) == 65 and dqt[0] == 0 and dqt[1] == 8


def test_annex_k_codes():
    code = synthetic.huffman_code
    assert code(synthetic._DC_LUM_BITS, synthetic._DC_VALS, 0) == (0b00, 2)  # Table K.3
    assert code(synthetic._DC_LUM_BITS, synthetic._DC_VALS, 5) == (0b110, 3)
    assert code(synthetic._DC_LUM_BITS, synthetic._DC_VALS, 11) == (0b111111110, 9)
    assert code(synthetic._DC_CHR_BITS, synthetic._DC_VALS, 2) == (0b10, 2)  # Table K.4
    assert code(synthetic._DC_CHR_BITS, synthetic._DC_VALS, 11) == (0b11111111110, 11)
    assert code(synthetic._AC_LUM_BITS, synthetic._AC_LUM_VALS, 0x00) == (0b1010, 4)  # K.5 EOB
    assert code(synthetic._AC_LUM_BITS, synthetic._AC_LUM_VALS, 0xF0) == (0b11111111001, 11)  # ZRL
    assert code(synthetic._AC_CHR_BITS, synthetic._AC_CHR_VALS, 0x00) == (0b00, 2)  # K.6 EOB
    assert len(synthetic._AC_LUM_VALS) == sum(synthetic._AC_LUM_BITS) == 162
    assert len(synthetic._AC_CHR_VALS) == sum(synthetic._AC_CHR_BITS) == 162


def check_blocks(cam, jpeg, frame):
    """Every decoded block holds the value the generator gave it."""
    width, height, planes = decode(jpeg)
    assert (width, height) == (cam.width, cam.height)
    for ci in range(len(planes)):
        stride, plane = planes[ci]
        size = 8 if ci == 0 else 16
        for i in range(len(plane)):
            bx = i % stride
            by = i // stride
            want = cam.ycc_at(size * bx, size * by, frame)[ci]
            assert plane[i] == want, (ci, bx, by, plane[i], want)
    return planes


def test_scan_stuffed_and_padded_f123():
    for color, frame in ((True, 10), (False, 12)):  # frames known to hold a 0xFF byte
        cam = SyntheticCamera(320, 240, color)
        cam.frame_number = frame
        jpeg = frame_of(cam)
        _, _, start, end = parse(jpeg)  # asserts every 0xFF in the scan is 0xFF 0x00
        assert sum(1 for i in range(start, end) if jpeg[i] == 0xFF) >= 1
        check_blocks(cam, jpeg, frame)  # and the data reads through it


def test_every_block_decodes_to_the_generated_value():
    cam = SyntheticCamera(320, 240)
    cam.frame_number = 37
    planes = check_blocks(cam, frame_of(cam), 37)
    assert [(stride, len(p)) for stride, p in planes] == [(40, 40 * 30), (20, 20 * 15), (20, 20 * 15)]
    grey = SyntheticCamera(320, 240, color=False)
    planes = check_blocks(grey, frame_of(grey), 0)
    assert [(stride, len(p)) for stride, p in planes] == [(40, 40 * 30)]


def test_odd_and_tiny_sizes_decode():
    for width, height, color in ((100, 60, True), (17, 9, False), (8, 8, True), (8, 8, False), (136, 88, True)):
        cam = SyntheticCamera(width, height, color)
        check_blocks(cam, frame_of(cam), 0)
        check_blocks(cam, frame_of(cam), 1)
    assert SyntheticCamera(8, 8).digits == 0
    assert SyntheticCamera(320, 240).digits == 6
    assert SyntheticCamera(96, 96).digits == 2


def read_counter(cam, planes):
    """The number drawn on the plate, read from the decoded luma blocks."""
    stride, luma = planes[0]
    number = 0
    x0 = cam.digits_x // 8
    y0 = cam.digits_y // 8
    for k in range(cam.digits):
        glyph = 0
        for r in range(5):
            for c in range(3):
                on = luma[(y0 + r) * stride + x0 + 4 * k + c] > 128
                glyph = (glyph << 1) | on
        number = number * 10 + synthetic._GLYPHS.index(glyph)
        assert luma[y0 * stride + x0 + 4 * k + 3] < 40  # the gap between digits is plate
    return number


def test_counter_reads_back_from_the_scan():
    cam = SyntheticCamera(320, 240)
    for start in (0, 9, 123456, 9999999):
        cam.frame_number = start
        _, _, planes = decode(frame_of(cam))
        assert read_counter(cam, planes) == start % 1000000
        assert cam.frame_number == start + 1


def test_consecutive_frames_differ():
    cam = SyntheticCamera(160, 120)
    frames = [frame_of(cam) for _ in range(5)]
    for a, b in zip(frames, frames[1:]):
        assert a != b
    assert cam.frame_number == 5
    # the bar moves 16 px a frame and wraps
    assert [cam.bar_x(f) for f in (0, 1, 9, 10)] == [0, 16, 144, 0]


def test_frame_size_bounds():
    cam = SyntheticCamera(320, 240)
    grey = SyntheticCamera(320, 240, color=False)
    for _ in range(30):
        n = len(cam.capture())
        assert 1500 < n < 4000, n
        assert n < len(cam._buf)
        n = len(grey.capture())
        assert 1000 < n < 3000, n
    assert cam._hdr == 542 and grey._hdr == 324


def test_capture_reuses_one_buffer():
    cam = SyntheticCamera(320, 240)
    first = cam.capture()
    copy = bytes(first)
    cam.capture()
    assert bytes(first) != copy  # the view follows the buffer: copy to keep a frame
    if hasattr(gc, "mem_alloc"):  # MicroPython: only the returned view is allocated
        gc.collect()
        gc.disable()
        try:
            before = gc.mem_alloc()
            for _ in range(4):
                cam.capture()
            per_frame = (gc.mem_alloc() - before) // 4
        finally:
            gc.enable()
        assert per_frame <= 64, per_frame


def test_a_frame_that_outgrows_the_buffer_grows_it_and_comes_out_whole():
    """The buffer is sized for one stuffed byte in eight; a frame that needs
    more (forced here with a tiny buffer) is encoded again in a worst-case
    one, the same bytes a roomy camera gives."""
    roomy = SyntheticCamera(64, 48)
    tight = SyntheticCamera(64, 48)
    tight._use_buffer(tight._hdr + 8)
    for _ in range(3):
        assert bytes(tight.capture()) == bytes(roomy.capture())
    assert len(tight._buf) >= 2 * tight._longest
    assert tight.frame_number == roomy.frame_number == 3


def test_rejects_bad_sizes():
    assert raises(ValueError, SyntheticCamera, 4, 240)
    assert raises(ValueError, SyntheticCamera, 320, 5000)


# ---- camera_source ----------------------------------------------------------


class FakeLemariva:
    """lemariva/micropython-camera-driver's module-level API."""

    JPEG = 5
    PSRAM = 1
    XCLK_10MHz = 10000000
    XCLK_20MHz = 20000000
    FRAME_QVGA = 6
    FRAME_VGA = 10
    FRAME_96X96 = 0

    def __init__(self):
        self.calls = []

    def init(self, index, **kw):
        self.calls.append(("init", index, kw))
        return True

    def capture(self):
        return b"\xff\xd8lemariva\xff\xd9"

    def deinit(self):
        self.calls.append(("deinit",))

    def flip(self, on):
        self.calls.append(("flip", on))

    def mirror(self, on):
        self.calls.append(("mirror", on))


class FakeCnadlerCamera:
    made = []

    def __init__(self, **kw):
        self.kw = kw
        self.vflip = False
        FakeCnadlerCamera.made.append(self)

    def capture(self):
        return memoryview(b"\xff\xd8cnadler\xff\xd9")

    def set_vflip(self, on):
        self.vflip = on

    def set_hmirror(self, on):
        pass

    def deinit(self):
        self.kw = None


class FakeCnadler:
    """cnadler86/micropython-camera-API's Camera class and enums."""

    class PixelFormat:
        JPEG = 4

    class FrameSize:
        QVGA = 6
        R240X240 = 5
        VGA = 10

    class GrabMode:
        WHEN_EMPTY = 0
        LATEST = 1

    Camera = FakeCnadlerCamera


ESP32_CAM = {"d0": 5, "d1": 18, "d2": 19, "d3": 21, "d4": 36, "d5": 39, "d6": 34, "d7": 35,
             "xclk": 0, "pclk": 22, "vsync": 25, "href": 23, "siod": 26, "sioc": 27, "pwdn": 32,
             "reset": -1, "psram": True}
CAMERA_BOARDS = ("esp32_cam", "esp32_s3_eye", "xiao_esp32s3_sense", "m5stack_timer_camera")


def test_frame_size_choice():
    assert camera_source.frame_size(320, 240) == (320, 240, "QVGA")
    assert camera_source.frame_size(330, 250) == (320, 240, "QVGA")
    assert camera_source.frame_size(240, 240) == (240, 240, "240X240")
    assert camera_source.frame_size(10, 10) == (96, 96, "96X96")


def test_driver_api_detection():
    assert camera_source.driver_api(FakeLemariva()) == "lemariva"
    assert camera_source.driver_api(FakeCnadler()) == "cnadler"
    assert camera_source.driver_api(object()) is None


def test_camera_source_lemariva():
    driver = FakeLemariva()
    src = camera_source.CameraSource(dict(ESP32_CAM, vflip=True), 320, 240, driver=driver)
    assert src.api == "lemariva" and (src.width, src.height) == (320, 240)
    name, index, kw = driver.calls[0]
    assert name == "init" and index == 0
    assert kw["format"] == 5 and kw["framesize"] == 6 and kw["fb_location"] == 1
    assert (kw["d0"], kw["d7"], kw["siod"], kw["sioc"], kw["xclk"], kw["pwdn"]) == (5, 35, 26, 27, 0, 32)
    assert kw["xclk_freq"] == 20000000 and 10 <= kw["quality"] <= 63
    assert ("flip", 1) in driver.calls
    assert src.capture() == b"\xff\xd8lemariva\xff\xd9" and src.frame_number == 1
    src.close()
    assert driver.calls[-1] == ("deinit",)


def test_camera_source_cnadler():
    FakeCnadlerCamera.made = []
    pins = dict(("d%d" % i, i) for i in range(8))
    src = camera_source.CameraSource(dict(pins, xclk=15, fb_count=2), 240, 240, driver=FakeCnadler())
    assert src.api == "cnadler"
    kw = FakeCnadlerCamera.made[0].kw
    assert kw["pixel_format"] == 4 and kw["frame_size"] == 5 and kw["grab_mode"] == 1
    assert kw["data_pins"] == list(range(8)) and kw["xclk_pin"] == 15 and "sda_pin" not in kw
    assert kw["jpeg_quality"] == 80
    assert bytes(src.capture()) == b"\xff\xd8cnadler\xff\xd9"
    src.close()


def test_every_camera_board_configures_both_drivers():
    for name in CAMERA_BOARDS:
        settings = __import__(name).CAMERA
        lemariva = FakeLemariva()
        src = camera_source.CameraSource(settings, 320, 240, driver=lemariva)
        kw = lemariva.calls[0][2]
        assert [kw["d%d" % i] for i in range(8)] == [settings["d%d" % i] for i in range(8)], name
        assert kw["siod"] == settings["siod"] and kw["sioc"] == settings["sioc"]
        assert src.width * src.height > 0
        FakeCnadlerCamera.made = []
        camera_source.CameraSource(settings, 320, 240, driver=FakeCnadler())
        kw = FakeCnadlerCamera.made[0].kw
        assert kw["sda_pin"] == settings["siod"] and kw["scl_pin"] == settings["sioc"], name
        assert kw["jpeg_quality"] == settings["jpeg_quality"] and kw["fb_count"] == settings["fb_count"]


def test_board_frame_size_wins_over_the_requested_size():
    src = camera_source.CameraSource(dict(ESP32_CAM, frame_size="VGA"), 320, 240, driver=FakeLemariva())
    assert (src.width, src.height) == (640, 480)
    assert raises(ValueError, camera_source.CameraSource, {"frame_size": "HUGE"}, 320, 240, FakeLemariva())


def test_open_source_on_a_host_is_synthetic():
    assert "camera" not in sys.modules
    for board_camera in (None, {}, ESP32_CAM):
        src = camera_source.open_source(board_camera, 160, 120)
        assert isinstance(src, SyntheticCamera) and (src.width, src.height) == (160, 120)


def test_open_source_uses_a_camera_module():
    sys.modules["camera"] = FakeLemariva()
    try:
        assert camera_source.open_source(ESP32_CAM, 320, 240).api == "lemariva"
        assert isinstance(camera_source.open_source(None, 320, 240), SyntheticCamera)
        sys.modules["camera"] = object()  # some other module called camera
        assert isinstance(camera_source.open_source(ESP32_CAM, 320, 240), SyntheticCamera)
    finally:
        del sys.modules["camera"]
