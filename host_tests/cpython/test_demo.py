"""`make demo` end to end: the camera app under the MicroPython unix port,
the signaling server and the viewer (tools/demo.py), with the viewer page
open in headless Chromium. The page must show live frames within seconds
and the ICE state connected. CPython only."""

import asyncio
import io
import os
import sys
import time

from PIL import Image, ImageStat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import demo  # noqa: E402
from browser import browser_network, browser_page  # noqa: E402,F401  (fixtures)
from test_browser_interop import LoopThread  # noqa: E402

FRAMES_WITHIN_S = 15


def frame_pixels(page):
    """The <img id="frame"> as the browser painted it."""
    return Image.open(io.BytesIO(page.locator("#frame").screenshot())).convert("RGB")


def test_demo_page_shows_live_frames(browser_page, tmp_path):
    page = browser_page
    lines = []
    with LoopThread() as loop:
        stop = asyncio.Event()
        ready = []
        started = time.monotonic()
        run = asyncio.run_coroutine_threadsafe(
            demo.run(http_port=0, page_port=0, log=lines.append, stop=stop, on_ready=ready.append), loop.loop)
        try:
            while not ready:
                assert not run.done(), "demo ended early:\n" + "\n".join(lines)
                assert time.monotonic() - started < 20, "no viewer page:\n" + "\n".join(lines)
                time.sleep(0.05)
            viewer = ready[0]
            page.goto(viewer.url)
            page.wait_for_function(
                "() => { const img = document.getElementById('frame');"
                " return img && img.complete && img.naturalWidth === 320 && img.naturalHeight === 240; }",
                timeout=FRAMES_WITHIN_S * 1000)
            first = frame_pixels(page)
            page.screenshot(path=str(tmp_path / "viewer.png"))
            state = page.locator("#ice-state").inner_text()
            selected = page.locator("#selected").inner_text()
            time.sleep(0.5)
            second = frame_pixels(page)
            frames = viewer.status()["frames_completed"]
        finally:
            loop.loop.call_soon_threadsafe(stop.set)
            final_frames = run.result(30)

    assert state in ("connected", "completed"), state
    assert "host" in selected, selected
    # A real picture, not a blank or broken image: the synthetic camera's
    # gradient, bar and digits give plenty of variation.
    assert max(ImageStat.Stat(first).stddev) > 20
    assert first.tobytes() != second.tobytes(), "the picture did not change"
    assert frames >= 5 and final_frames >= frames
    assert any(line.startswith("camera | camera: session for") for line in lines), "\n".join(lines)


def test_demo_browser_page_shows_the_camera_over_a_data_channel(browser_page, tmp_path):
    """Issue 16: the address the demo prints opens the browser page, which
    takes frames straight from the camera (MicroPython) over a WebRTC data
    channel, with the grant in the address; a screenshot shows a live picture."""
    page = browser_page
    lines = []
    with LoopThread() as loop:
        stop = asyncio.Event()
        ready = []
        run = asyncio.run_coroutine_threadsafe(
            demo.run(http_port=0, page_port=0, log=lines.append, stop=stop, on_ready=ready.append), loop.loop)
        try:
            started = time.monotonic()
            while not ready:
                assert not run.done() and time.monotonic() - started < 20, "\n".join(lines)
                time.sleep(0.05)
            url = [line for line in lines if line.startswith("demo: browser page")][0].split(": ", 2)[2]
            page.goto(url)
            page.wait_for_function("() => window.viewer && window.viewer.frames >= 5 && window.viewer.lastImageWidth === 320",
                                   timeout=FRAMES_WITHIN_S * 1000)
            first = frame_pixels(page)
            page.screenshot(path=str(tmp_path / "browser.png"))
            time.sleep(0.5)
            second = frame_pixels(page)
            viewer = page.evaluate("window.viewer")
        finally:
            loop.loop.call_soon_threadsafe(stop.set)
            run.result(30)
    assert viewer["dtls"] == "connected" and viewer["channel"] == "open" and viewer["grant"] != "not yet", viewer
    assert max(ImageStat.Stat(first).stddev) > 20
    assert first.tobytes() != second.tobytes(), "the picture did not change"
    assert any("data channel via host/" in line for line in lines), "\n".join(lines)


def test_demo_through_mosquitto():
    """`make demo SIGNALING=mqtt`: the same three parts, signaling through a
    private Mosquitto; frames reach the viewer."""
    from mosquitto import find_mosquitto

    if find_mosquitto() is None and not os.environ.get("CI"):
        import pytest

        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    lines = []
    frames = asyncio.run(demo.run(seconds=6, http_port=0, page_port=0, log=lines.append, mqtt=True))
    assert frames >= 20, "\n".join(lines[-30:])
    assert any("through Mosquitto" in line for line in lines), lines[:10]
