"""What a camera and its viewers share (firmware/PROTOCOL.md): frame
framing over the ICE pair (`camlink.framing`), the signaling client
(`camlink.signal`) and the ICE half of a session's signaling
(`camlink.session`). The same source runs on MicroPython and CPython.
"""
