"""Runs pytest against the ASan/UBSan build of layerscan._scan (`make asan`).

    python scripts/pytest_asan.py BUILD_LIB [pytest arguments...]

BUILD_LIB is where `setup.py build_ext --build-lib` put the instrumented
extension (BUILD_LIB/layerscan/_scan*.so). That directory goes ahead of the
source tree on `layerscan.__path__`, so `layerscan._scan` is the instrumented
build and every other module is the source tree's. The run stops before any
test unless the loaded extension is that file, is instrumented, and the
sanitizer runtimes are in the process (LD_PRELOAD, see the Makefile).

Parametrizations that run only the pure-Python reference engine
(engine="reference") are deselected: no native code runs in them, and under
PYTHONMALLOC=malloc with ASan they would only slow the run down. The tests'
timeouts (hang guards sized for the plain build) are multiplied by
TIMEOUT_FACTOR, as instrumented code and malloc-backed Python run slower.
pytest captures at the sys level only (--capture=sys): a sanitizer writes its
report to file descriptor 2 and ends the process, so fd-level capture would
swallow it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import layerscan


def load_instrumented(build_lib: Path) -> Path:
    """Import layerscan._scan from build_lib and prove it is the sanitized build; returns its path."""
    package_dir = (build_lib / "layerscan").resolve()
    if not any(package_dir.glob("_scan*.so")):
        raise SystemExit(f"pytest_asan: no _scan*.so in {package_dir}; run 'make asan'")
    if "layerscan._scan" in sys.modules:
        raise SystemExit("pytest_asan: layerscan._scan was imported before the instrumented build could be chosen")
    layerscan.__path__.insert(0, str(package_dir))
    from layerscan import _scan

    so = Path(_scan.__file__ or "").resolve()
    if so.parent != package_dir:
        raise SystemExit(f"pytest_asan: layerscan._scan came from {so}, not from {package_dir}")
    if b"__asan_report_load" not in so.read_bytes() or b"__ubsan_handle_" not in so.read_bytes():
        raise SystemExit(f"pytest_asan: {so} is not built with -fsanitize=address,undefined")
    maps = Path("/proc/self/maps").read_text()
    missing = [lib for lib in ("libasan.so", "libubsan.so") if lib not in maps]
    if missing:
        raise SystemExit(f"pytest_asan: {', '.join(missing)} not loaded; LD_PRELOAD them (see 'make asan')")
    return so


TIMEOUT_FACTOR = 4


class SanitizedRun:
    """Deselects test items parametrized with engine='reference'; stretches timeouts."""

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        keep, drop = [], []
        for item in items:
            callspec = getattr(item, "callspec", None)
            (drop if callspec is not None and callspec.params.get("engine") == "reference" else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        default = float(config.getini("timeout") or 0)
        for item in items:
            marker = item.get_closest_marker("timeout")
            seconds = float(marker.args[0]) if marker is not None and marker.args else default
            if seconds:
                item.add_marker(pytest.mark.timeout(seconds * TIMEOUT_FACTOR), append=False)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    so = load_instrumented(Path(sys.argv[1]))
    print(f"pytest_asan: layerscan._scan is the sanitized build {so}", flush=True)
    sys.exit(pytest.main(["--capture=sys", *sys.argv[2:]], plugins=[SanitizedRun()]))


if __name__ == "__main__":
    main()
