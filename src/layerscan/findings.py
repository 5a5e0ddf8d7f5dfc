"""Secret and content findings of an image: every layer's hits, placed in the final image.

    secret_findings(results, files, rules) -> [SecretFinding], sorted by path, line, rule, layer
    apply_allow_rules(findings, enabled) -> (the findings kept, {allow rule id: findings suppressed})

A hit is `in_final_image` when the final file at its path was written by the hit's
layer. As Anchore does, the hits in the content a final symlink or hardlink leads to
are reported again under the link's path.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from .catalog.metadata import JSON_KEY, OPTIONAL
from .filetree import ImageFiles, SymlinkLoop
from .scan.model import TYPE_BYTES, LayerResult
from .scan.rules import Rule

_FILE, _HARDLINK = TYPE_BYTES["file"], TYPE_BYTES["hardlink"]
_LINKS = frozenset((_HARDLINK, TYPE_BYTES["symlink"]))


@dataclasses.dataclass(frozen=True)
class SecretFinding:
    """One hit, as the JSON report writes it (report/native.value_json): its fields in order,
    `masked` under "match", and `allowed_by` only where --secrets-all keeps a suppressed one."""

    rule: str
    kind: str  # "secret", or "content" (content_search)
    path: str  # absolute
    line: int  # 1-based
    layer: int
    in_final_image: bool  # False: a later layer deleted or replaced the file; still in the blobs
    masked: str = dataclasses.field(metadata={JSON_KEY: "match"})  # never the full value
    # The allow rule (scan/allow.py) that calls it an example, not a secret.
    allowed_by: str | None = dataclasses.field(default=None, metadata={OPTIONAL: True})


def secret_findings(
    results: Sequence[LayerResult | None], files: ImageFiles, rules: Sequence[Rule]
) -> list[SecretFinding]:
    """Every hit of every layer, marked in_final_image when the final file at that path
    was written by that layer; plus the hits of the content a final link leads to."""
    kind = {r.id: r.kind for r in rules}
    table = files.files
    # A layer used twice is reported at its last position, the only one where its files can be final.
    last: dict[int, int] = {id(r): i for i, r in enumerate(results) if r is not None}
    found: dict[tuple[str, str, int, int], SecretFinding] = {}
    for i, result in enumerate(results):
        if result is None or last[id(result)] != i:
            continue
        for hit in result.secrets:
            final = table.get(hit.path)
            in_final = final is not None and final.layer == i and final.record.type == "file"
            found[(hit.path, hit.rule, hit.line, i)] = SecretFinding(
                hit.rule,
                kind.get(hit.rule, "secret"),
                hit.path,
                hit.line,
                i,
                in_final,
                hit.masked,
                hit.allowed_by or None,
            )
    by_content: dict[tuple[str, int], list[SecretFinding]] = {}
    for f in found.values():
        by_content.setdefault((f.path, f.layer), []).append(f)
    if by_content:
        for i in _links(files):
            path = files.paths[i]
            for f in by_content.get(_link_content(files, i) or ("", -1), ()):
                found[(path, f.rule, f.line, f.layer)] = dataclasses.replace(f, path=path, in_final_image=True)
    return sorted(found.values(), key=lambda f: (f.path, f.line, f.rule, f.layer))


def apply_allow_rules(
    findings: Sequence[SecretFinding], enabled: bool = True
) -> tuple[list[SecretFinding], dict[str, int]]:
    """The findings no allow rule allows, and how many each allow rule suppressed (by rule id,
    sorted), so that nothing is hidden silently. `enabled` False (secrets_all) keeps them all."""
    if not enabled:
        return list(findings), {}
    kept = [f for f in findings if not f.allowed_by]
    suppressed = Counter(f.allowed_by for f in findings if f.allowed_by)
    return kept, dict(sorted(suppressed.items()))


def _links(files: ImageFiles) -> list[int]:
    """The rows of hardlinks and symlinks."""
    kinds = files.types
    return [i for i in range(len(kinds)) if kinds[i] in _LINKS]


def _link_content(files: ImageFiles, i: int) -> tuple[str, int] | None:
    """(path, layer) of the file content the link at row i leads to; None for dead ends."""
    link, layer = files.links[i] or "", files.layers[i]
    if files.types[i] == _HARDLINK:
        # The link's content is its target as of the link's layer: the final target when no
        # later layer replaced it, else (deleted or replaced later; Anchore's squash then
        # copies the content under the link's name) the target in the link's own layer,
        # where tar hardlinks point.
        t = files.row(link)
        return (link, files.layers[t] if t is not None and files.layers[t] <= layer else layer)
    try:
        real = files.resolve(files.paths[i])
    except SymlinkLoop:
        return None
    t = files.row(real) if real else None
    if real is None or t is None or files.types[t] != _FILE:
        return None
    return real, files.layers[t]
