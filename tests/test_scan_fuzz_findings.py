"""What the libFuzzer target (fuzz/fuzz_scan.c, `make fuzz`) found, kept as regression tests.

Each file in tests/fuzz_findings/ is an input on which the native scanner once
misbehaved: a sanitizer report, or a whole scan and a chunked scan that ended
differently. Both engines scan it whole, in the chunks the fuzz target fed it in,
and in 1-byte and 7-byte chunks; every way must end the same (an equal
LayerResult, or the same error class at the same offset), and the engines must
agree: equal results, or both reject the input. Under `make asan` the native scans run instrumented,
so a memory error or undefined behaviour fails the run too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from layerscan.errors import LayerError
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, Limits, ScanOptions
from layerscan.scan.rules import default_rules
from scancheck import ENGINES, assert_same, comparable
from tarbuilder import chunked

FINDINGS = Path(__file__).resolve().parent / "fuzz_findings"
INPUTS = sorted(FINDINGS.iterdir())

# The limits fuzz_scan.c scans with.
OPTIONS = ScanOptions(
    rules=tuple(default_rules()),
    secret_max_file_size=1 << 20,
    capture_max_bytes=64 << 10,
    compute_diff_id=True,
    limits=Limits(max_total_bytes=16 << 20, max_entries=2000, max_path_bytes=1024, max_ext_header_bytes=64 << 10),
)

MASK = (1 << 64) - 1
MAX_FEEDS = 1024  # as in fuzz_scan.c


def _splitmix64(state: list[int]) -> int:
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & MASK
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def fuzz_target_chunks(data: bytes) -> Iterator[bytes]:
    """The chunks fuzz_scan.c feeds `data` in: its FNV-1a-seeded splitmix64 draws, step for step."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    rng, size, at = [h], len(data), 0
    start = 0 if _splitmix64(rng) % 2 else _splitmix64(rng) % (size + 1)
    max_chunk = 1 << (_splitmix64(rng) % 17)
    feeds = 0
    while at < size:
        n = start if at < start else 1 + _splitmix64(rng) % max_chunk if feeds <= MAX_FEEDS else size - at
        n = min(n, size - at)
        yield data[at : at + n]
        at += n
        feeds += 1


def outcome(data: bytes, engine: str, how: str) -> LayerResult | tuple[type, int | None]:
    """The result, or (error class, offset) of a LayerError."""
    feed = {
        "whole": lambda: data,
        "fuzz-target": lambda: fuzz_target_chunks(data),
        "1-byte": lambda: chunked(data, [1]),
        "7-byte": lambda: chunked(data, [7]),
    }[how]()
    try:
        return scan_layer(feed, OPTIONS, engine=engine, name="finding")
    except LayerError as e:
        return type(e), e.offset


def same(a: LayerResult | tuple[type, int | None], b: LayerResult | tuple[type, int | None]) -> bool:
    if isinstance(a, LayerResult) and isinstance(b, LayerResult):
        return comparable(a) == comparable(b)
    return a == b


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_same_outcome_however_fed(path: Path, engine: str) -> None:
    data = path.read_bytes()
    whole = outcome(data, engine, "whole")
    for how in ("fuzz-target", "1-byte", "7-byte"):
        got = outcome(data, engine, how)
        assert same(got, whole), f"{engine}, fed {how}: {got!r}; fed whole: {whole!r}"


@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_native_equals_reference(path: Path) -> None:
    data = path.read_bytes()
    native, reference = outcome(data, "native", "whole"), outcome(data, "reference", "whole")
    if isinstance(native, LayerResult) and isinstance(reference, LayerResult):
        assert_same(native, reference)
    else:
        # Both must reject it; which problem each names first may differ (a corrupt gzip member
        # behind a malformed header: native reads the header first, the reference inflates ahead).
        assert not isinstance(native, LayerResult), f"native scanned what the reference rejects: {reference!r}"
        assert not isinstance(reference, LayerResult), f"the reference scanned what native rejects: {native!r}"


def test_chunks_cover_the_input() -> None:
    """The mirror of the fuzz target's splitting loses and repeats no byte."""
    for path in INPUTS:
        data = path.read_bytes()
        assert b"".join(fuzz_target_chunks(data)) == data
