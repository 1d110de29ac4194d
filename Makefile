# Two entry points for a fresh machine: `make demo` and `make test`.
#
# Both create the virtualenv .venv when missing, install the pinned torch first (so no other
# torch is ever resolved), then ktorch in editable mode with the native extension, built
# against that torch (hence --no-build-isolation). Stamp files in .venv make a second run
# start at once: the package is reinstalled only when setup.py or pyproject.toml change, and
# the extension is rebuilt (incrementally) only when csrc/ changes.

PYTHON ?= python3
TORCH_VERSION := 2.13.0
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

# The venv's tools (ninja for parallel, incremental extension builds) come first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

CSRC := $(shell find csrc -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' \) 2>/dev/null)
TORCH_STAMP := $(VENV)/.stamp-torch-$(TORCH_VERSION)
EXT_STAMP := $(VENV)/.stamp-extension

.PHONY: demo test lint extension clean

demo: $(VENV)/.stamp-install-demo $(EXT_STAMP)
	$(PY) -m ktorch.examples.digits

test: $(VENV)/.stamp-install-test $(EXT_STAMP)
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check .

lint: $(VENV)/.stamp-install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

$(PY):
	$(PYTHON) -m venv $(VENV)

$(TORCH_STAMP): | $(PY)
	$(PIP) install "torch==$(TORCH_VERSION)" "setuptools>=64" wheel ninja
	touch $@

# The editable install builds the extension too, so it also marks the extension as fresh.
$(VENV)/.stamp-install-%: setup.py pyproject.toml $(TORCH_STAMP)
	$(PIP) install --no-build-isolation -e ".[$*]"
	touch $(EXT_STAMP) $@

$(EXT_STAMP): $(CSRC)
	$(PY) setup.py build_ext --inplace
	touch $@

extension: $(EXT_STAMP)

clean:
	rm -rf build ktorch/_C*.so $(EXT_STAMP)
