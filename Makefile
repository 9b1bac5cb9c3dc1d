# Cadenza: set up, test, run.  `make test` is the command CI runs; `make test-fast`
# the quick loop while working (unit and engine tests: no JACK, no training).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-light test test-fast lint native plugin plugin-windows install-plugin run simulate bundle clean

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

# The plugin is built before the tests wherever DPF is installed (CI installs
# it: .ci/run); without DPF the plugin's tests skip, saying why.
DPF_MAKEFILE := $(wildcard /usr/share/dpf/Makefile.plugins.mk)
# The plugin's Windows build where MinGW-w64 and Wine are installed (plugin-windows, below).
MINGW_PREFIX ?= x86_64-w64-mingw32
WINE64 := $(firstword $(wildcard /usr/lib/wine/wine64) $(shell command -v wine64 2>/dev/null))
HAVE_WINDOWS_BUILD := $(and $(DPF_MAKEFILE),$(shell command -v $(MINGW_PREFIX)-g++-posix 2>/dev/null),$(WINE64))

test: setup lint native $(if $(DPF_MAKEFILE),plugin) $(if $(HAVE_WINDOWS_BUILD),plugin-windows)
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

# The LV2/CLAP/VST3 plugin (needs dpf-source, lv2-dev; see docs/plugin.md):
# build/plugin/cadenza.lv2/, cadenza.clap (+ cadenza-resources/), cadenza.vst3/.
plugin:
	$(MAKE) -C plugin

# The Windows build of the plugin, cross-compiled with MinGW-w64 (Debian's
# g++-mingw-w64-x86-64-posix) into build/plugin-windows/, with the CLAP test
# host as a Windows program; its test plays it under Wine (wine64).  `make test`
# builds it where both are installed (CI installs them: .ci/run).
plugin-windows:
	$(MAKE) -C plugin windows WINDOWS=true CC=$(MINGW_PREFIX)-gcc-posix CXX=$(MINGW_PREFIX)-g++-posix \
		WINE=$(WINE64) OUT=$(CURDIR)/build/plugin-windows

install-plugin: plugin
	mkdir -p ~/.lv2 ~/.clap ~/.vst3
	rm -rf ~/.lv2/cadenza.lv2 ~/.vst3/cadenza.vst3 ~/.clap/cadenza-resources
	cp -r build/plugin/cadenza.lv2 ~/.lv2/
	cp -r build/plugin/cadenza.vst3 ~/.vst3/
	cp build/plugin/cadenza.clap ~/.clap/
	cp -r build/plugin/cadenza-resources ~/.clap/

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
