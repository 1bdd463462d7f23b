"""The memory budgets on the 32-bit MicroPython unix port (../shared/upy32,
or UPY32=path), whose objects and small ints have an ESP32's sizes; each
fails when the library or the camera app grows past it. The programs and
the way they are run are make bench's (tools/bench_device.py).

Budgets issue 15 set and met:
- the camera session in a 96K heap with its ROMFS image outside the heap
  (the unix port reads the image into the heap, so it runs at image + 96K);
- import ice.agent from ROMFS in 32 KB;
- a handled check allocates at most 512 B and reconnects do not grow the
  heap: host_tests/test_leaks.py, which make test runs on this port too.
Budgets at today's level, tighter than they were and short of issue 15's
targets (96K for the library alone, 128K for the camera as .mpy files,
32 KB for import ice.agent as .mpy), so that what was won is kept:
LIBRARY_HEAP, CAMERA_HEAP_MPY, CORE_IMPORT_MPY.

Without the 32-bit port these tests skip with the reason, unless CI is
set, where they fail (.ci/run needs ../shared/upy32)."""

import asyncio
import os

import pytest

import bench_device

ROMFS_BOARD_HEAP = 96 * 1024
CORE_IMPORT_ROMFS = 32 * 1024
LIBRARY_HEAP = "120K"
CAMERA_HEAP_MPY = "160K"
CORE_IMPORT_MPY = 52 * 1024
FRAMES = 100


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    found, missing = bench_device.ports(str(tmp_path_factory.mktemp("budget")))
    board_sized = [p for p in found if p.name == "32-bit"]
    if not board_sized:
        if os.environ.get("CI"):
            pytest.fail("CI is set but %s" % missing, pytrace=False)
        pytest.skip(missing)
    p = board_sized[0]
    p.prepare(lambda text: None)
    return p


def test_the_camera_runs_in_96k_with_its_romfs_image_outside_the_heap(port):
    heap = "%dK" % ((port.image_size + ROMFS_BOARD_HEAP) // 1024 + 1)
    run = asyncio.run(port.camera(heap, FRAMES, FRAMES / 15 * 1.5 + 20, use_romfs=True))
    assert run["passed"] and run["frames"] >= FRAMES, (heap, run["error"])


def test_the_camera_runs_in_its_budget_as_mpy_files(port):
    run = asyncio.run(port.camera(CAMERA_HEAP_MPY, FRAMES, FRAMES / 15 * 1.5 + 20))
    assert run["passed"] and run["frames"] >= FRAMES, run["error"]


def test_the_library_alone_streams_in_its_budget(port):
    run = asyncio.run(port.library_session(LIBRARY_HEAP))
    assert run["passed"], run


def test_importing_the_core_stays_in_its_budget(port):
    _, from_romfs = port.import_cost(bench_device.CORE, "ROMFS")
    _, as_mpy = port.import_cost(bench_device.CORE, ".mpy")
    assert from_romfs <= CORE_IMPORT_ROMFS, from_romfs
    assert as_mpy <= CORE_IMPORT_MPY, as_mpy
