"""The synthetic camera's frames through a real decoder: Pillow (libjpeg)
reads them at the right size and mode, with the colours the generator meant."""

import io

import pytest
from PIL import Image  # pillow, pinned in requirements-dev.txt

from cam import synthetic
from cam.synthetic import SyntheticCamera


def tri(t):
    return t if t < 32 else 63 - t


def open_frame(cam):
    im = Image.open(io.BytesIO(bytes(cam.capture())))
    im.load()
    return im


def open_ycc(data):
    """Decode without colour conversion: libjpeg hands out Y, Cb, Cr."""
    im = Image.open(io.BytesIO(data))
    im.draft("YCbCr", im.size)
    im.load()
    assert im.mode == "YCbCr"
    return im


def to_rgb(y, cb, cr):
    """JFIF YCbCr -> RGB (JFIF 1.02 section 7), clamped."""
    def clamp(v):
        return max(0, min(255, int(round(v))))

    return (clamp(y + 1.402 * (cr - 128)),
            clamp(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)),
            clamp(y + 1.772 * (cb - 128)))


@pytest.mark.parametrize("width,height,color", [
    (320, 240, True), (320, 240, False), (640, 480, True), (100, 60, True), (17, 9, False), (8, 8, True),
])
def test_pillow_decodes_size_and_mode(width, height, color):
    cam = SyntheticCamera(width, height, color)
    for _ in range(3):
        im = open_frame(cam)
        assert im.format == "JPEG" and im.size == (width, height)
        assert im.mode == ("RGB" if color else "L")
        assert im.info.get("jfif_version") == (1, 1) and not im.info.get("progressive")


def dht_tables(data):
    """{Tc<<4|Th: (BITS, HUFFVAL)} from every DHT segment of a JPEG file."""
    tables = {}
    pos = 2
    while data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if data[pos + 1] == 0xC4:
            body = data[pos + 4 : pos + 2 + length]
            i = 0
            while i < len(body):
                count = sum(body[i + 1 : i + 17])
                tables[body[i]] = (bytes(body[i + 1 : i + 17]), bytes(body[i + 17 : i + 17 + count]))
                i += 17 + count
        pos += 2 + length
    return tables


def test_huffman_tables_are_libjpegs_standard_ones_annex_k():
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 90)).save(out, "JPEG", quality=75, optimize=False)
    ours = dht_tables(bytes(SyntheticCamera(64, 64).capture()))
    assert ours == dht_tables(out.getvalue())
    assert set(ours) == {0x00, 0x01, 0x10, 0x11}


@pytest.mark.parametrize("frame", [0, 5, 37, 250])
def test_every_block_has_the_generated_colour(frame):
    cam = SyntheticCamera(320, 240)
    cam.frame_number = frame
    im = open_frame(cam)
    grey = SyntheticCamera(320, 240, color=False)
    grey.frame_number = frame
    gim = open_frame(grey)
    # block centres sit 4 px inside a 16 px chroma cell, clear of upsampling blur
    for by in range(30):
        for bx in range(40):
            x, y = 8 * bx + 4, 8 * by + 4
            want = to_rgb(*cam.ycc_at(x, y, frame))
            got = im.getpixel((x, y))
            assert all(abs(a - b) <= 2 for a, b in zip(got, want)), (x, y, got, want)
            assert abs(gim.getpixel((x, y)) - grey.ycc_at(x, y, frame)[0]) <= 1


def test_background_bar_and_digits_as_documented():
    frame = 12345
    cam = SyntheticCamera(320, 240)
    cam.frame_number = frame
    im = open_ycc(bytes(cam.capture()))
    plate = (16, 16, 16 + 8 * (4 * cam.digits + 2), 16 + 64)  # x0, y0, x1, y1
    bar = cam.bar_x(frame)
    for by in range(30):
        for bx in range(40):
            x, y = 8 * bx + 4, 8 * by + 4
            Y, Cb, Cr = im.getpixel((x, y))
            if plate[0] <= x < plate[2] and plate[1] <= y < plate[3]:
                assert Y < 40 or Y > 200  # plate or digit
                assert abs(Cb - 128) <= 1 and abs(Cr - 128) <= 1
            elif bar <= x < bar + 16:
                assert (Y, Cb, Cr) == (235, 128, 128)
            else:
                cx, cy = x // 16, y // 16
                assert abs(Y - (48 + 4 * tri((bx + by + frame) & 63))) <= 1
                assert abs(Cb - (64 + 4 * tri((2 * cx + frame) & 63))) <= 1
                assert abs(Cr - (64 + 4 * tri((cx + 3 * cy + 2 * frame + 21) & 63))) <= 1
    shown = "%06d" % (frame % 10**6)
    for k, ch in enumerate(shown):
        glyph = synthetic._GLYPHS[int(ch)]
        for r in range(5):
            for c in range(3):
                x = cam.digits_x + 8 * (4 * k + c) + 4
                y = cam.digits_y + 8 * r + 4
                on = glyph >> (3 * (4 - r) + 2 - c) & 1
                Y = im.getpixel((x, y))[0]
                assert (Y > 230) if on else (Y < 20), (k, r, c, Y)


def test_the_picture_moves():
    cam = SyntheticCamera(320, 240)
    a = open_ycc(bytes(cam.capture()))
    b = open_ycc(bytes(cam.capture()))
    changed = sum(1 for by in range(30) for bx in range(40)
                  if a.getpixel((8 * bx + 4, 8 * by + 4)) != b.getpixel((8 * bx + 4, 8 * by + 4)))
    assert changed > 1000  # most blocks change every frame
