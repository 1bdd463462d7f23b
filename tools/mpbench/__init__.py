"""Programs `make bench` (tools/bench.py) runs on the MicroPython unix ports,
and the lockstep network it also drives on CPython. Each program prints
lines of `KEY values...` that tools/bench.py reads."""
