"""Frame chunking, reassembly and loss reports (firmware/PROTOCOL.md)."""

from camlink import framing
from helpers import raises


def frame_of(size, seed=1):
    return bytes((seed * 7 + i * 13) & 0xFF for i in range(size))


def chunks_of(chunker, frame):
    return [bytes(c) for c in chunker.chunks(frame)]


def test_chunks_fit_the_safe_payload_and_rebuild_the_frame():
    chunker = framing.Chunker()
    frame = frame_of(5000)
    chunks = chunks_of(chunker, frame)
    assert len(chunks) == 5
    assert all(len(c) <= framing.HEADER_SIZE + framing.MAX_CHUNK for c in chunks)
    assert all(framing.is_frame_datagram(c) for c in chunks)
    assembler = framing.Assembler()
    out = [assembler.add(c) for c in chunks]
    assert out[:-1] == [None] * 4 and out[-1] == frame
    assert assembler.completed == 1 and assembler.dropped == 0


def test_chunks_in_any_order_and_duplicates_rebuild_once():
    chunker = framing.Chunker(max_chunk=100)
    frame = frame_of(350)
    chunks = chunks_of(chunker, frame)
    assembler = framing.Assembler()
    results = [assembler.add(c) for c in (chunks[3], chunks[1], chunks[1], chunks[0], chunks[2], chunks[2])]
    assert results.count(frame) == 1 and assembler.completed == 1


def test_a_newer_frame_abandons_an_incomplete_one():
    chunker = framing.Chunker(max_chunk=100)
    first = chunks_of(chunker, frame_of(300, 1))
    second = chunks_of(chunker, frame_of(300, 2))
    assembler = framing.Assembler()
    assembler.add(first[0])
    for c in second:
        result = assembler.add(c)
    assert result == frame_of(300, 2)
    assert assembler.dropped == 1
    assert assembler.add(first[1]) is None  # late chunk of the abandoned frame
    assert assembler.completed == 1


def test_frame_ids_wrap_around():
    chunker = framing.Chunker()
    chunker.frame_id = 0xFFFF
    assembler = framing.Assembler()
    assert assembler.add(chunks_of(chunker, b"a")[0]) == b"a"
    assert chunker.frame_id == 0
    assert assembler.add(chunks_of(chunker, b"b")[0]) == b"b"


def test_empty_frame_is_one_chunk():
    chunker = framing.Chunker()
    chunks = chunks_of(chunker, b"")
    assert len(chunks) == 1
    assert framing.Assembler().add(chunks[0]) == b""


def test_malformed_chunks_are_counted_not_raised():
    assembler = framing.Assembler()
    for bad in (b"", b"\x81", b"\x81\x00\x00\x01\x00\x02\x00\x02", b"\x81\x00\x00\x01\x00\x00\x00\x00", b"\x01" * 12):
        assert assembler.add(bad) is None
    assert assembler.malformed == 5 and assembler.completed == 0


def test_loss_report_round_trip():
    buf = bytearray(framing.HEADER_SIZE)
    size = framing.write_report(buf, 70000, 3, 1000)
    assert size == framing.HEADER_SIZE and framing.is_frame_datagram(buf)
    assert framing.parse_report(buf) == (70000 & 0xFFFF, 3, 1000)
    raises(framing.FrameError, framing.parse_report, b"\x81" + bytes(7))
    raises(ValueError, framing.Chunker, 0)
