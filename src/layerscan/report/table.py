"""A human summary of one analysis: image, layers, files, secrets, packages, time."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from ..analysis import Analysis
from ..filetree import KIND_OF
from ..scan.model import TYPE_BYTES

MAX_SECRET_LINES = 20
_FILE = TYPE_BYTES["file"]


def write(a: Analysis, out: TextIO) -> None:
    w = out.write
    w(f"Image     {a.source_name}  ({a.os}/{a.architecture})\n")
    w(f"Manifest  {a.manifest_digest}\n")
    if a.distro is not None:
        w(f"Distro    {a.distro.id} {a.distro.version_id}".rstrip() + "\n")

    missing = sum(1 for layer in a.layers if layer.missing)
    w(f"\nLayers    {len(a.layers)}" + (f" ({missing} missing)" if missing else "") + "\n")
    for layer in a.layers:
        d = layer.descriptor
        entries = "missing" if layer.missing else f"{layer.entries} entries"
        w(f"  {layer.index:>3}  {d.digest[:19]}  {_size(d.size):>9}  {entries:>14}  {d.media_type}\n")

    files = a.files
    kinds = Counter(map(KIND_OF.__getitem__, files.types))
    data = sum(size for kind, size in zip(files.types, files.sizes, strict=True) if kind == _FILE)
    by_kind = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    w(f"\nFiles     {len(a.files)}" + (f" ({by_kind})" if by_kind else "") + f", {_size(data)} of file data\n")

    final = [s for s in a.secrets if s.in_final_image]
    w(f"\nSecrets   {len(final)} in the final image, {len(a.secrets) - len(final)} in deleted or replaced files\n")
    for rule, n in sorted(Counter(s.rule for s in a.secrets).items()):
        w(f"  {rule:<28} {n}\n")
    for s in a.secrets[:MAX_SECRET_LINES]:
        where = "" if s.in_final_image else "  (deleted or replaced; still in layer blobs)"
        allowed = f"  (allow rule {s.allowed_by} calls it an example)" if s.allowed_by else ""
        w(f"  {s.path}:{s.line}  layer {s.layer}  {s.rule}  {s.masked}{where}{allowed}\n")
    if len(a.secrets) > MAX_SECRET_LINES:
        w(f"  ... and {len(a.secrets) - MAX_SECRET_LINES} more in the JSON report\n")
    if a.secrets_suppressed:
        total = sum(a.secrets_suppressed.values())
        w(f"  {total} more matches suppressed by the allow rules (--secrets-all shows them):\n")
        for allow, n in a.secrets_suppressed.items():
            w(f"    {allow:<26} {n}\n")

    w(f"\nPackages  {len(a.packages)}\n")
    for kind, n in sorted(Counter(p.type for p in a.packages).items()):
        w(f"  {kind:<28} {n}\n")
    if a.catalog_errors:
        w(f"  {len(a.catalog_errors)} file(s) could not be cataloged\n")

    rate = a.bytes_out / a.seconds / 1e6 if a.seconds > 0 else 0.0
    w(
        f"\nTime      {a.seconds:.2f} s, {_size(a.bytes_in)} compressed, {_size(a.bytes_out)} uncompressed, "
        f"{rate:.1f} MB/s\n"
    )
    for warning in a.warnings:
        w(f"Warning   {warning}\n")


def _size(n: float) -> str:
    if n < 1000:
        return f"{int(n)} B"
    unit = "B"
    for unit in ("kB", "MB", "GB"):  # noqa: B007 - the last unit divided by is the one printed
        n /= 1000
        if n < 1000:
            break
    return f"{n:.1f} {unit}"
