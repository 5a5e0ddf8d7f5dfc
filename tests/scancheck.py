"""Engines to run a scan test on, and the comparison of two LayerResults column by column."""

from __future__ import annotations

import dataclasses

from layerscan.scan.model import EntryTable, LayerResult

ENGINES = ("native", "reference")

COLUMNS = tuple(f.name for f in dataclasses.fields(EntryTable))


def columns(table: EntryTable) -> dict[str, list]:
    """Every column as a plain list, so that array('l') and array('q') compare equal."""
    return {name: list(getattr(table, name)) for name in COLUMNS}


def comparable(result: LayerResult) -> dict:
    """Everything a scan reports except the time it took."""
    return {
        "entries": columns(result.entries),
        "whiteouts": list(result.whiteouts),
        "secrets": list(result.secrets),
        "captured": dict(result.captured),
        "too_big_to_capture": list(result.too_big_to_capture),
        "stats": result.stats._replace(seconds=0.0),
        "diff_id": result.diff_id,
        "digest": result.digest,
        "warnings": result.warnings,
        "marks": dict(result.marks),
    }


def assert_same(native: LayerResult, reference: LayerResult) -> None:
    """native == reference, reporting the first differing part (and the first differing entry)."""
    a, b = comparable(native), comparable(reference)
    for key in a:
        if key == "entries":
            for col in COLUMNS:
                x, y = a[key][col], b[key][col]
                if x != y:
                    i = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
                    where = reference.entries.paths[i] if i < len(reference.entries) else "<past the end>"
                    raise AssertionError(
                        f"native and reference differ in column {col!r} at entry {i} ({where!r}): "
                        f"native {x[i : i + 1]!r} (of {len(x)}), reference {y[i : i + 1]!r} (of {len(y)})"
                    )
        else:
            assert a[key] == b[key], f"native and reference differ in {key}: native {a[key]!r}, reference {b[key]!r}"
