"""Headless Chromium for the browser tests, driven by Playwright.

Playwright is the PyPI package (requirements-dev.txt); it drives Debian's
Chromium (`/usr/bin/chromium`, package `chromium`, installed by .ci/run) via
`executable_path`, so no browser is downloaded (`playwright install` is never
run). Launch flags: BROWSER_ARGS below, and a fresh `--user-data-dir` per launch.

Chromium runs in a private network namespace. WebRTC in Chromium hides host
candidates behind mDNS names (`<uuid>.local`), the default users see and the
one these tests keep, and it announces each name by multicast on every
interface (RFC 6762 §8.3); in the machine's own namespace that would leave
through its real interface. `PrivateNetwork` moves the calling thread into a
new namespace holding only `lo` and a veth pair (`v0` with NETWORK_ADDRESS,
`v1` its carrier) and a default route into `v0` (without one Chromium thinks it
is offline and gathers nothing). Nothing sent there leaves the machine.
Everything the test starts from that thread afterwards (servers, threads,
subprocesses, Chromium itself) shares that network; leaving restores the
thread's own namespace.

Fixtures (import them into a test module: `from browser import browser_network, browser_page`):
- `browser_network`: the PrivateNetwork the test runs in (`.address`, `.interface`).
- `browser_page`: a Playwright (sync API) page of a fresh headless Chromium in
  that network.
Both skip with the reason when Chromium or Playwright is missing, or a network
namespace cannot be made, unless CI is set: then they fail, since .ci/run and
`make setup` install everything these tests need.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NETWORK_ADDRESS = "198.51.100.10"  # RFC 5737 TEST-NET-2, inside the private namespace only
NETWORK_PREFIX = 24
INTERFACE = "v0"

_CLONE_NEWNET = 0x40000000


def find_chromium():
    """Path of the Chromium binary (`$CHROMIUM`, else Debian's), or None."""
    for path in (os.environ.get("CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _unavailable(reason):
    """Skip, or fail when CI is set: there a missing piece is a broken setup."""
    if os.environ.get("CI"):
        pytest.fail("CI is set but %s; .ci/run installs Debian's chromium and iproute2, "
                    "`make setup` the PyPI playwright" % reason, pytrace=False)
    pytest.skip(reason)


class PrivateNetwork:
    """A fresh network namespace for the calling thread (see the module docstring).
    Needs root (CAP_SYS_ADMIN) and iproute2's `ip`."""

    def __init__(self, address=NETWORK_ADDRESS, prefix=NETWORK_PREFIX, interface=INTERFACE):
        self.address = address
        self.prefix = prefix
        self.interface = interface
        self._home = None

    def __enter__(self):
        ip = shutil.which("ip") or "/usr/sbin/ip"
        if not os.path.exists(ip):
            raise OSError("iproute2's `ip` is not installed")
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        if libc.unshare(_CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            os.close(home)
            raise OSError(errno, "unshare(CLONE_NEWNET): %s" % os.strerror(errno))
        self._home = home
        peer = self.interface + "peer"
        try:
            for cmd in (
                "link set lo up",
                "link add %s type veth peer name %s" % (self.interface, peer),
                "link set %s up" % peer,
                "link set %s up" % self.interface,
                "addr add %s/%d dev %s" % (self.address, self.prefix, self.interface),
                "route add default dev %s" % self.interface,
            ):
                subprocess.run([ip] + cmd.split(), check=True, capture_output=True, text=True, timeout=10)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self._home is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            if libc.setns(self._home, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the original network namespace failed")
        finally:
            os.close(self._home)
            self._home = None


@contextlib.contextmanager
def chromium_page(executable=None, extra_args=()):
    """A page of a fresh headless Chromium (sync Playwright); closed on exit.
    Call it inside PrivateNetwork, for the reason in the module docstring."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,  # Playwright passes it as --user-data-dir
            executable_path=executable or find_chromium() or CHROMIUM,
            headless=True,
            args=BROWSER_ARGS + list(extra_args),
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


@pytest.fixture
def browser_network():
    if find_chromium() is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        network = PrivateNetwork()
        network.__enter__()
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        _unavailable("no private network namespace for Chromium (needs root and iproute2): %s" % detail)
    try:
        yield network
    finally:
        network.__exit__(None, None, None)


@pytest.fixture
def browser_page(browser_network):
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the PyPI package playwright is not installed (make setup)")
    with chromium_page() as page:
        yield page
