"""The export's secret_search and content_search analyzers: regexp_matches.all."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from ...findings import SecretFinding
from ...scan.rules import Rule


def rule_key(rule: Rule) -> str:
    """Anchore's key for a rule: base64.encodebytes of the whole "NAME=regex" string,
    a newline every 76 characters and one at the end (13_secret_content_search.py)."""
    return base64.encodebytes(f"{rule.id}={rule.pattern}".encode()).decode("ascii")


def regexp_matches(findings: Iterable[SecretFinding], rules: Iterable[Rule], kind: str) -> dict[str, str]:
    """path -> JSON string {rule key: [0-based line, ...]} for findings in the final image."""
    keys = {r.id: rule_key(r) for r in rules if r.kind == kind}
    by_path: dict[str, dict[str, list[int]]] = {}
    for f in sorted(findings, key=lambda f: (f.path, f.line)):
        if f.kind != kind or not f.in_final_image:
            continue  # Anchore reports the final image only; the JSON report has the rest
        key = keys.get(f.rule) or base64.encodebytes(f.rule.encode()).decode("ascii")
        lines = by_path.setdefault(f.path, {}).setdefault(key, [])
        if f.line - 1 not in lines:
            lines.append(f.line - 1)
    return {path: json.dumps(m) for path, m in by_path.items()}
