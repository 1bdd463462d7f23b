"""ROMFS: tools/romfs.py builds an image of the device's packages; the
MicroPython unix port mounts it at /rom as a board mounts its ROM partition,
imports the library from it (bytecode in place: less heap than .mpy files),
connects two sans-IO agents, and runs the camera app (firmware/main.py
--romfs). Also the ROMFS side of tools/deploy.py.

CPython only: subprocesses, tmp_path, asyncio.
"""

import asyncio
import os
import subprocess
import sys

import pytest

from bench_device import CORE
from tools import deploy, romfs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
HEAP = "256K"  # the image (about 125 KB with webrtc) sits in this heap too
ARCH_CODES = {"x64": 2, "xtensawin": 10}  # MicroPython's MP_NATIVE_ARCH_*

pytestmark = pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="make setup installs the unix port")

@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """An image for this machine's unix port with boards/unix.py as board.mpy; its staging folder."""
    tmp = tmp_path_factory.mktemp("romfs")
    out = romfs.build("host", board="unix", out=str(tmp / "host.romfs"), stage=str(tmp / "stage"))
    return out, str(tmp / "stage")


@pytest.fixture(scope="module")
def check_mpy(tmp_path_factory):
    """mp_romfs_check.py and the tools/mpbench modules it uses, as .mpy."""
    tmp = tmp_path_factory.mktemp("check")
    for source in (os.path.join(os.path.dirname(__file__), "mp_romfs_check.py"),
                   os.path.join(ROOT, "tools", "mpbench", "romfs_mount.py"),
                   os.path.join(ROOT, "tools", "mpbench", "lockstep.py")):
        target = tmp / (os.path.basename(source)[:-3] + ".mpy")
        subprocess.run([romfs.MPY_CROSS, "-o", str(target), source], check=True)
    return str(tmp)


def _mpy_names(folder):
    """folder/*.py as the .mpy names the image holds, sorted."""
    return sorted(f[:-3] + ".mpy" for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".py"))


def _check(check_dir, image_arg, path):
    env = dict(os.environ, MICROPYPATH=":".join([".frozen"] + path + [check_dir]))
    r = subprocess.run([MICROPYTHON, "-X", "heapsize=" + HEAP, "-m", "mp_romfs_check", image_arg, ",".join(CORE)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    for line in r.stdout.splitlines():
        key, _, rest = line.partition(" ")
        out.setdefault(key, []).append(rest)
    return out


@pytest.mark.parametrize("arch", sorted(ARCH_CODES))
def test_image_holds_the_library_and_app_compiled_for_the_arch(arch, tmp_path):
    path = romfs.build(arch, out=str(tmp_path / "out.romfs"), stage=str(tmp_path / "stage"))
    with open(path, "rb") as f:
        assert f.read(3) == b"\xd2\xcd\x31"  # ROMFS magic
    stage = tmp_path / "stage"
    assert os.listdir(stage) == ["lib"]  # no board.mpy unless asked
    assert sorted(os.listdir(stage / "lib" / "ice")) == _mpy_names("lib/ice")
    assert sorted(os.listdir(stage / "lib" / "camlink")) == _mpy_names("lib/camlink")
    assert sorted(os.listdir(stage / "lib" / "webrtc")) == _mpy_names("lib/webrtc")
    assert sorted(os.listdir(stage / "lib" / "cam")) == _mpy_names("firmware/cam")
    for folder in ("ice", "camlink", "webrtc", "cam"):
        for name in os.listdir(stage / "lib" / folder):
            header = (stage / "lib" / folder / name).read_bytes()[:3]
            assert header[:1] == b"M"
            assert header[2] >> 2 in (0, ARCH_CODES[arch]), name  # bytecode only, or native code for arch


def test_mounted_image_imports_the_library_from_rom_and_agents_connect(image, check_mpy):
    out = _check(check_mpy, image[0], [])
    assert out["ROOT"] == ["board.mpy lib"]
    assert out["ICE"] == [" ".join(_mpy_names("lib/ice"))]
    assert out["CAMLINK"] == [" ".join(_mpy_names("lib/camlink"))]
    assert out["CAM"] == [" ".join(_mpy_names("firmware/cam"))]
    files = dict(line.split(" ", 1) for line in out["FILE"])
    assert set(CORE) <= set(files)
    for name, file in files.items():
        assert file == "/rom/lib/" + name.replace(".", "/") + ("/__init__.mpy" if name == "ice" else ".mpy")
    states = out["STATES"][0].split()
    assert states[0] in ("connected", "completed") and states[1] in ("connected", "completed"), states
    assert out["DATA"] == ["[b'\\x80hello']"]
    assert out["BOARD"] == ["/rom/board.mpy MicroPython unix port"]


def test_romfs_import_keeps_less_heap_than_mpy_files(image, check_mpy):
    """The same .mpy files (the staging folder) on the filesystem copy their
    bytecode into the heap; from the mounted image it runs in place."""
    rom = int(_check(check_mpy, image[0], [])["KEPT"][0])
    files = _check(check_mpy, "-", [os.path.join(image[1], "lib")])
    assert all(line.split()[1].startswith(os.path.join(image[1], "lib")) for line in files["FILE"])
    mpy = int(files["KEPT"][0])
    assert rom < 0.7 * mpy, (rom, mpy)


def test_camera_app_streams_from_romfs(image, tmp_path):
    """firmware/main.py --romfs, copied alone (no lib/, firmware/ or boards/
    beside it to fall back on): app, library and board.mpy come from the
    image, and frames reach a viewer."""
    from tools import signaling, viewer as viewer_tool

    main_py = tmp_path / "main.py"
    main_py.write_bytes(open(os.path.join(ROOT, "firmware", "main.py"), "rb").read())

    async def main():
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0)
        viewer = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), "romfs", ("127.0.0.1", 0),
                                    include_loopback=True, log=lambda line: None,
                                    connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
        camera = await asyncio.create_subprocess_exec(  # the image (about 125 KB) sits in this heap too
            MICROPYTHON, "-X", "heapsize=320K", str(main_py), "--romfs", image[0],
            "--board", "board", "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", "romfs",
            "--interface", "127.0.0.1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ, MICROPYPATH=".frozen"))
        try:
            await viewer.start()
            await viewer.wait_for(lambda s: s["frames_completed"] >= 15, timeout=30)
        finally:
            if camera.returncode is None:
                camera.terminate()
            output = (await camera.communicate())[0].decode(errors="replace")
            await viewer.close()
            await server.close()
        assert "Traceback" not in output and "joined room 'romfs'" in output, output

    asyncio.run(asyncio.wait_for(main(), 60))


def test_deploy_romfs_dry_run_prints_exactly_the_commands(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "deploy.py"), "--port", "/dev/ttyACM0",
                        "--board", "esp32_s3_eye", "--romfs", "--dry-run", "--secrets", str(tmp_path / "none.py")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    mp = ".venv/bin/mpremote connect /dev/ttyACM0"
    assert r.stdout.splitlines() == [
        ".venv/bin/python tools/romfs.py --arch xtensawin --name esp32_s3_eye",
        mp + " romfs deploy build/romfs/esp32_s3_eye.romfs",
        mp + " exec '%s'" % deploy.device_cleanup_code(),
        mp + " cp firmware/boot.py firmware/main.py :/",
        mp + " cp boards/esp32_s3_eye.py :/board.py",
        mp + " reset",
    ]


def test_deploy_cleanup_line_runs_on_micropython(tmp_path):
    """It removes lib/ice, lib/camlink and lib/cam (a file deploy's) and leaves the rest,
    and runs again without error when they are gone."""
    code = deploy.device_cleanup_code(str(tmp_path))
    subprocess.run([MICROPYTHON, "-c", code], check=True, timeout=30)  # no lib at all
    for folder in ("ice", "camlink", "cam", "other"):
        (tmp_path / "lib" / folder).mkdir(parents=True)
        (tmp_path / "lib" / folder / "x.mpy").write_bytes(b"M")
    subprocess.run([MICROPYTHON, "-c", code], check=True, timeout=30)
    assert os.listdir(tmp_path / "lib") == ["other"]
    subprocess.run([MICROPYTHON, "-c", code], check=True, timeout=30)
