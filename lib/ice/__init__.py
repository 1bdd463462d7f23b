"""ICE (RFC 8445) with STUN (RFC 8489) and TURN (RFC 8656) for MicroPython and CPython.

Importing `ice` loads nothing else: a board imports only the modules it uses
(`ice.stun`, `ice.sdp`, ...).
"""

__version__ = "0.1.0"
