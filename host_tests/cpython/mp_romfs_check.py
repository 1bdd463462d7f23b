# Run by test_romfs.py on the MicroPython unix port, as .mpy with -m (no
# compiling under the heap cap), beside tools/mpbench's romfs_mount and
# lockstep:
#
#   micropython -m mp_romfs_check IMAGE|- MODULE,MODULE,...
#
# With an image: mounts it at /rom as a board does and lists what it holds
# (ROOT, ICE, CAMLINK, CAM lines). Then imports the modules (KEPT: heap kept;
# FILE: where each ice module came from), connects two sans-IO agents and
# sends one datagram (STATES, DATA), and shows which board module loads.
import gc
import os
import sys

from romfs_mount import mount_romfs

if sys.argv[1] != "-":
    mount_romfs(sys.argv[1])
    print("ROOT", " ".join(sorted(os.listdir("/rom"))))
    for package in ("ice", "camlink", "cam"):
        print(package.upper(), " ".join(sorted(os.listdir("/rom/lib/" + package))))
gc.collect()
start = gc.mem_alloc()
for name in sys.argv[2].split(","):
    __import__(name)
gc.collect()
print("KEPT", gc.mem_alloc() - start)
for name in sorted(sys.modules):
    if name == "ice" or name.startswith("ice."):
        print("FILE", name, sys.modules[name].__file__)

import lockstep  # noqa: E402  (it imports ice: only once the image is mounted)

net = lockstep.Net()
a, b = lockstep.make_pair(net, 1)
while net.now < 10000 and not (lockstep.connected(a) and lockstep.connected(b)):
    net.now += 10
    for x in (a, b):
        x.handle_timeout(net.now)
        net.drain(x)
    net.deliver()
t = a.send(b"\x80hello")
got = b.handle_packet(net.now, t[2], t[3], t[0], t[1], bytes(t[4]))
print("STATES", a.state, b.state, net.now)
print("DATA", [bytes(got)])
if sys.argv[1] != "-":
    import board

    print("BOARD", board.__file__, board.NAME)
