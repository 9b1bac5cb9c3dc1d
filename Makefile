# Cadenza: set up, test, run.  `make test` is the command CI runs; `make test-fast`
# the quick loop while working (unit and engine tests: no JACK, no training).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-light test test-fast lint native run simulate bundle clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(VENV)/bin/ruff check .

# The native core (the C++ model step and its C API) into build/native/.
# Optional for the daemon: `pip install .` needs no compiler.  `make test`
# builds it and requires it, so its parity tests run rather than skip.
NATIVE_BUILD ?= build/native
native:
	cmake -S native -B $(NATIVE_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(NATIVE_BUILD) -j 2

test: setup lint native
	CADENZA_REQUIRE_NATIVE=1 $(PY) -m pytest -q -ra

# The unit and engine tests: no JACK end-to-end tests, no training, neither the
# CLI's tests (they load TensorFlow) nor the token scheme's proof against
# music21: under a minute.
FAST_TESTS := tests/engine tests/midi tests/daemon tests/offline tests/testing \
	tests/core/test_layout.py tests/core/test_config.py tests/core/test_key.py \
	tests/core/test_key_mask.py tests/core/test_bundle.py
test-fast: setup
	$(PY) -m pytest -q -ra -m "not jack and not slow" $(FAST_TESTS)

# The daemon on the bundled model, virtual ports "Cadenza In" / "Cadenza Out";
# with no MIDI system on this machine, the offline duet (duet.mid, duet.png).
# Options for `cadenza live`: make run ARGS="--mode accompany --bpm 96"
run: setup
	CADENZA=$(VENV)/bin/cadenza bash scripts/run.sh $(ARGS)

# The offline duet, for a machine with no MIDI system.
simulate: setup
	$(VENV)/bin/cadenza simulate --out duet.mid --plot duet.png

# Rebuild the bundled model from scratch (see models/README.md).
bundle: setup
	bash scripts/build_bundled_model.sh

# The native core (C++17, CMake): build/native/libcadenza_engine.so, which
# `--engine native` and the identity tests load.  Optional for the daemon.
native:
	cmake -S native -B build/native -DCMAKE_BUILD_TYPE=Release
	cmake --build build/native -j 2

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
