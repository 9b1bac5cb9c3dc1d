# Cadenza: set up, test, run.  `make test` is the command CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-light test lint run simulate bundle native clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q -ra

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
