"""A synthetic camera: real baseline JPEG frames (ITU T.81, JFIF) without a
sensor, for boards without a camera and for the unix port.

The encoder codes only the DC coefficient of each 8x8 block (every AC
coefficient is zero, so a block is its DC difference then EOB), which makes
each block one flat colour: the picture is a mosaic of 8x8 tiles (chroma
tiles of 16x16 in colour). That is enough to show motion and a frame
counter, costs no DCT, and stays a standard baseline JPEG any decoder reads.

The picture, in 8x8 blocks (bx, by) and colour cells of 16x16 (cx, cy),
frame f, tri(t) = t if t < 32 else 63 - t for t = 0..63:
  background  Y = 48 + 4 * tri((bx + by + f) & 63)  (a diagonal ramp scrolling)
              Cb = 64 + 4 * tri((2 * cx + f) & 63)
              Cr = 64 + 4 * tri((cx + 3 * cy + 2 * f + 21) & 63)
  bar         a white column 16 px wide at x = bar_x(f), sweeping right
  counter     f mod 10**digits as 3x5-block digits, white (Y 235) on a black
              (Y 16) plate, both neutral (Cb = Cr = 128); digit k's cell
              (col c, row r) is the block at x = digits_x + 8 * (4k + c),
              y = digits_y + 8 * r.
"""

import array

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(value):
        return value


_DC_Q = const(8)  # DC quantiser: DC = 8 * mean (T.81 A.3.3), so the coded value is mean - 128
_BAR = const(235)
_ON = const(235)
_OFF = const(16)
_NEUTRAL = const(128)
_MAX_DIGITS = const(6)
_PLATE_X = const(2)  # plate position and border, in blocks (kept on 16 px cells)
_PLATE_Y = const(2)

# Annex K.3 (Table K.3-K.6): BITS (codes of length 1..16) then HUFFVAL.
_DC_LUM_BITS = b"\x00\x01\x05\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00"
_DC_CHR_BITS = b"\x00\x03\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00"
_DC_VALS = b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"
_AC_LUM_BITS = b"\x00\x02\x01\x03\x03\x02\x04\x03\x05\x05\x04\x04\x00\x00\x01\x7d"
_AC_LUM_VALS = (
    b"\x01\x02\x03\x00\x04\x11\x05\x12\x21\x31\x41\x06\x13\x51\x61\x07"
    b"\x22\x71\x14\x32\x81\x91\xa1\x08\x23\x42\xb1\xc1\x15\x52\xd1\xf0"
    b"\x24\x33\x62\x72\x82\x09\x0a\x16\x17\x18\x19\x1a\x25\x26\x27\x28"
    b"\x29\x2a\x34\x35\x36\x37\x38\x39\x3a\x43\x44\x45\x46\x47\x48\x49"
    b"\x4a\x53\x54\x55\x56\x57\x58\x59\x5a\x63\x64\x65\x66\x67\x68\x69"
    b"\x6a\x73\x74\x75\x76\x77\x78\x79\x7a\x83\x84\x85\x86\x87\x88\x89"
    b"\x8a\x92\x93\x94\x95\x96\x97\x98\x99\x9a\xa2\xa3\xa4\xa5\xa6\xa7"
    b"\xa8\xa9\xaa\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xc2\xc3\xc4\xc5"
    b"\xc6\xc7\xc8\xc9\xca\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xe1\xe2"
    b"\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8"
    b"\xf9\xfa"
)
_AC_CHR_BITS = b"\x00\x02\x01\x02\x04\x04\x03\x04\x07\x05\x04\x04\x00\x01\x02\x77"
_AC_CHR_VALS = (
    b"\x00\x01\x02\x03\x11\x04\x05\x21\x31\x06\x12\x41\x51\x07\x61\x71"
    b"\x13\x22\x32\x81\x08\x14\x42\x91\xa1\xb1\xc1\x09\x23\x33\x52\xf0"
    b"\x15\x62\x72\xd1\x0a\x16\x24\x34\xe1\x25\xf1\x17\x18\x19\x1a\x26"
    b"\x27\x28\x29\x2a\x35\x36\x37\x38\x39\x3a\x43\x44\x45\x46\x47\x48"
    b"\x49\x4a\x53\x54\x55\x56\x57\x58\x59\x5a\x63\x64\x65\x66\x67\x68"
    b"\x69\x6a\x73\x74\x75\x76\x77\x78\x79\x7a\x82\x83\x84\x85\x86\x87"
    b"\x88\x89\x8a\x92\x93\x94\x95\x96\x97\x98\x99\x9a\xa2\xa3\xa4\xa5"
    b"\xa6\xa7\xa8\xa9\xaa\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xc2\xc3"
    b"\xc4\xc5\xc6\xc7\xc8\xc9\xca\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda"
    b"\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xf2\xf3\xf4\xf5\xf6\xf7\xf8"
    b"\xf9\xfa"
)

# 3x5 digit glyphs, top row first, 3 bits per row (left column = 4).
_GLYPHS = (
    0o75557, 0o26227, 0o71747, 0o71717, 0o55711,
    0o74717, 0o74757, 0o71111, 0o75757, 0o75717,
)

_MAX_BITS = const(18)  # longest block: DC code 8 bits + 8 magnitude bits + EOB (F.1.2.1)
_MAX_HEADER = const(542)  # colour header; greyscale is shorter


def huffman_code(bits, values, symbol):
    """(code, length) of `symbol` in a table given as BITS/HUFFVAL (Annex C)."""
    code = k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            if values[k] == symbol:
                return code, length
            code += 1
            k += 1
        code <<= 1
    raise ValueError("symbol not in table")


def _block_lut(dc_bits, ac_bits, ac_values):
    """Index d + 255 -> (code << 5) | length of a whole block whose DC
    difference is d: DC category code, magnitude bits, then EOB (F.1.2.1,
    F.1.2.2; negative d sends the low bits of d - 1)."""
    eob, eob_len = huffman_code(ac_bits, ac_values, 0x00)
    dc = [huffman_code(dc_bits, _DC_VALS, size) for size in range(9)]  # |d| <= 255: size <= 8
    lut = array.array("I", range(511))
    for d in range(-255, 256):
        a = d if d >= 0 else -d
        size = 0
        while a:
            size += 1
            a >>= 1
        code, length = dc[size]
        extra = d if d >= 0 else (d - 1) & ((1 << size) - 1)
        code = (((code << size) | extra) << eob_len) | eob
        lut[d + 255] = (code << 5) | (length + size + eob_len)
    return lut


_LUTS = []  # (luma, chroma) block tables, built once and shared


def _luts():
    if not _LUTS:
        _LUTS.append(_block_lut(_DC_LUM_BITS, _AC_LUM_BITS, _AC_LUM_VALS))
        _LUTS.append(_block_lut(_DC_CHR_BITS, _AC_CHR_BITS, _AC_CHR_VALS))
    return _LUTS


def _tri_table(base):
    t = bytearray(64)
    for i in range(64):
        t[i] = base + 4 * (i if i < 32 else 63 - i)
    return t


_TRI_Y = _tri_table(48)
_TRI_C = _tri_table(64)


def _segment(out, pos, marker, body_len):
    out[pos] = 0xFF
    out[pos + 1] = marker
    n = body_len + 2
    out[pos + 2] = n >> 8
    out[pos + 3] = n & 0xFF
    return pos + 4


def _put(out, pos, data):
    out[pos : pos + len(data)] = data
    return pos + len(data)


def write_header(out, width, height, color):
    """SOI, APP0 (JFIF 1.01), DQT, SOF0, DHT, SOS into `out`; returns the length."""
    pos = _put(out, 0, b"\xff\xd8")  # SOI (B.2.1)
    pos = _segment(out, pos, 0xE0, 14)  # JFIF APP0: version 1.01, aspect 1:1, no thumbnail
    pos = _put(out, pos, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    pos = _segment(out, pos, 0xDB, 65)  # DQT (B.2.4.1): table 0, 8-bit; only entry 0 is ever used
    out[pos] = 0
    for i in range(64):
        out[pos + 1 + i] = _DC_Q
    pos += 65
    ncomp = 3 if color else 1
    pos = _segment(out, pos, 0xC0, 6 + 3 * ncomp)  # SOF0 (B.2.2): baseline, 8-bit
    out[pos] = 8
    out[pos + 1] = height >> 8
    out[pos + 2] = height & 0xFF
    out[pos + 3] = width >> 8
    out[pos + 4] = width & 0xFF
    out[pos + 5] = ncomp
    pos += 6
    for c in range(ncomp):  # id, HiVi (Y 2x2 for 4:2:0), quant table 0
        out[pos] = c + 1
        out[pos + 1] = (0x22 if color else 0x11) if c == 0 else 0x11
        out[pos + 2] = 0
        pos += 3
    tables = [(0x00, _DC_LUM_BITS, _DC_VALS), (0x10, _AC_LUM_BITS, _AC_LUM_VALS)]
    if color:
        tables.append((0x01, _DC_CHR_BITS, _DC_VALS))
        tables.append((0x11, _AC_CHR_BITS, _AC_CHR_VALS))
    pos = _segment(out, pos, 0xC4, sum(17 + len(v) for _, _, v in tables))  # DHT (B.2.4.2)
    for tc_th, bits, values in tables:
        out[pos] = tc_th
        pos = _put(out, pos + 1, bits)
        pos = _put(out, pos, values)
    pos = _segment(out, pos, 0xDA, 4 + 2 * ncomp)  # SOS (B.2.3): all components, Ss 0, Se 63
    out[pos] = ncomp
    pos += 1
    for c in range(ncomp):
        out[pos] = c + 1
        out[pos + 1] = 0x00 if c == 0 else 0x11
        pos += 2
    return _put(out, pos, b"\x00\x3f\x00")


class SyntheticCamera:
    """capture() returns one JPEG frame as a memoryview into a buffer reused
    by the next capture(): send it or copy it (bytes(frame)) before then.
    `frame_number` is the number the next capture() draws; it counts up."""

    def __init__(self, width=320, height=240, color=True):
        if not (8 <= width <= 4096 and 8 <= height <= 4096):
            raise ValueError("width and height must be 8-4096")
        self.width = width
        self.height = height
        self.color = color
        self.frame_number = 0
        unit = 16 if color else 8  # MCU size (A.2.3, A.2.2)
        self._mw = (width + unit - 1) // unit
        self._mh = (height + unit - 1) // unit
        self._bw = self._mw * unit // 8  # blocks per row, padded to whole MCUs
        blocks = self._mw * self._mh * (6 if color else 1)
        self._longest = (blocks * _MAX_BITS + 7) // 8 + 1  # every block at its longest, one pad byte
        # Room for one stuffed byte in eight (a 0xFF is rarer); capture()
        # grows it to the true worst case, every byte stuffed, if a frame
        # ever needs more.
        self._use_buffer(_MAX_HEADER + self._longest * 9 // 8 + 2)
        self._ylut, self._clut = _luts()
        self._y0 = bytearray(self._bw)
        self._y1 = bytearray(self._bw)
        self._cb = bytearray(self._mw)
        self._cr = bytearray(self._mw)
        vis_w = width // 8
        n = min(_MAX_DIGITS, (vis_w - 2 * _PLATE_X) // 4)
        if n < 1 or height // 8 < _PLATE_Y + 8:
            n = 0
        self.digits = n
        self.digits_x = (_PLATE_X + 1) * 8
        self.digits_y = (_PLATE_Y + 1) * 8
        # The plate: 4n + 2 blocks wide, 8 high (border 1 left/top, 2 right/bottom).
        self._plate = [bytearray(4 * n + 2) for _ in range(8 if n else 0)]
        self._neutral = bytearray(b"\x80" * (2 * n + 1))
        self._bars = width // 16

    def _use_buffer(self, size):
        self._buf = bytearray(size)
        self._hdr = write_header(self._buf, self.width, self.height, self.color)
        self._view = memoryview(self._buf)

    def bar_x(self, frame):
        """Left edge of the bar in frame `frame`, in pixels (-1: no bar)."""
        return 16 * (frame % self._bars) if self._bars else -1

    def _draw_plate(self, frame):
        n = self.digits
        if not n:
            return
        plate = self._plate
        for row in plate:
            for i in range(len(row)):
                row[i] = _OFF
        value = frame
        for k in range(n - 1, -1, -1):
            glyph = _GLYPHS[value % 10]
            value //= 10
            x = 1 + 4 * k
            for r in range(5):
                row = plate[1 + r]
                bits = glyph >> (3 * (4 - r))
                row[x] = _ON if bits & 4 else _OFF
                row[x + 1] = _ON if bits & 2 else _OFF
                row[x + 2] = _ON if bits & 1 else _OFF

    def _compose_luma(self, row, by, frame):
        tri = _TRI_Y
        s = by + frame
        for bx in range(self._bw):
            row[bx] = tri[(s + bx) & 63]
        if self._bars:
            x = 2 * (frame % self._bars)
            row[x] = _BAR
            row[x + 1] = _BAR
        r = by - _PLATE_Y
        if self.digits and 0 <= r < 8:
            row[_PLATE_X : _PLATE_X + len(self._plate[r])] = self._plate[r]

    def _compose_chroma(self, cy, frame):
        tri = _TRI_C
        cb = self._cb
        cr = self._cr
        s = 3 * cy + 2 * frame + 21
        for cx in range(self._mw):
            cb[cx] = tri[(2 * cx + frame) & 63]
            cr[cx] = tri[(s + cx) & 63]
        if self._bars:
            x = frame % self._bars
            cb[x] = cr[x] = _NEUTRAL
        if self.digits and 0 <= cy - _PLATE_Y // 2 < 4:
            a = _PLATE_X // 2
            cb[a : a + len(self._neutral)] = self._neutral
            cr[a : a + len(self._neutral)] = self._neutral

    def ycc_at(self, x, y, frame):
        """(Y, Cb, Cr) the generator gives pixel (x, y) of frame `frame`;
        for tests and checks, slow."""
        self._draw_plate(frame)
        self._compose_luma(self._y0, y >> 3, frame)
        if not self.color:
            return self._y0[x >> 3], _NEUTRAL, _NEUTRAL
        self._compose_chroma(y >> 4, frame)
        return self._y0[x >> 3], self._cb[x >> 4], self._cr[x >> 4]

    def capture(self):
        try:
            return self._encode()
        except IndexError:  # more stuffing than the buffer allowed for
            self._use_buffer(_MAX_HEADER + 2 * self._longest + 2)
            return self._encode()

    def _encode(self):
        frame = self.frame_number
        self._draw_plate(frame)
        out = self._buf
        pos = self._hdr
        ylut = self._ylut
        y0 = self._y0
        acc = 0  # pending bits, the newest in the low `n` (F.1.2.3)
        n = 0
        py = 128  # DC predictors as pixel values: 128 is a coded 0 (F.1.1.5.1)
        if self.color:
            clut = self._clut
            y1 = self._y1
            cb = self._cb
            cr = self._cr
            pb = pr = 128
            for my in range(self._mh):
                self._compose_luma(y0, 2 * my, frame)
                self._compose_luma(y1, 2 * my + 1, frame)
                self._compose_chroma(my, frame)
                bx = 0
                for mx in range(self._mw):
                    # Y00 Y01 Y10 Y11 Cb Cr (A.2.3); each block: append, then emit whole bytes.
                    v = y0[bx]
                    e = ylut[v - py + 255]
                    py = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0  # byte stuffing (F.1.2.3)
                            pos += 1
                    v = y0[bx + 1]
                    e = ylut[v - py + 255]
                    py = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
                    v = y1[bx]
                    e = ylut[v - py + 255]
                    py = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
                    v = y1[bx + 1]
                    e = ylut[v - py + 255]
                    py = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
                    v = cb[mx]
                    e = clut[v - pb + 255]
                    pb = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
                    v = cr[mx]
                    e = clut[v - pr + 255]
                    pr = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
                    bx += 2
        else:
            for by in range(self._mh):
                self._compose_luma(y0, by, frame)
                for bx in range(self._mw):
                    v = y0[bx]
                    e = ylut[v - py + 255]
                    py = v
                    k = e & 31
                    acc = ((acc & 127) << k) | (e >> 5)
                    n += k
                    while n >= 8:
                        n -= 8
                        b = (acc >> n) & 255
                        out[pos] = b
                        pos += 1
                        if b == 255:
                            out[pos] = 0
                            pos += 1
        if n:  # pad the last byte with 1-bits (F.1.2.3)
            b = ((acc << (8 - n)) | ((1 << (8 - n)) - 1)) & 255
            out[pos] = b
            pos += 1
            if b == 255:
                out[pos] = 0
                pos += 1
        out[pos] = 0xFF  # EOI
        out[pos + 1] = 0xD9
        self.frame_number = frame + 1
        return self._view[: pos + 2]
