"""The built-in secret rules against real data, through both engines.

- The secrets planted in the debian-apps corpus image are found on their 1-based
  lines with the right rule.
- The upstream secret fixtures (trivy, detect-secrets, gitleaks), packed into a layer:
  for the finding kinds we cover, every expected finding's line is found; the true
  negatives give no finding. What we do not cover, and why, is written down below.
- Every rule is valid Python `re` and compiles in Hyperscan (exactly, or as a prefilter).
- Masking: no reported secret carries the full value.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import hyperscan
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, answers, layer_blob
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, ScanOptions
from layerscan.scan.rules import BUILTIN_RULES, builtin_rules, check_unique, default_rules, mask
from scancheck import ENGINES
from tarbuilder import Entry, build

SECRETS = FIXTURES / "secrets"
OPTIONS = ScanOptions(rules=tuple(builtin_rules()))

# Upstream finding kind -> the rule ids of ours that find it.
TRIVY_KINDS: dict[str, set[str]] = {
    **{
        k: {k}
        for k in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "private-key",
            "github-pat",
            "github-fine-grained-pat",
            "github-app-token",
            "alibaba-access-key-id",
            "azure-ai-services-key",
            "azure-app-config-connection-string",
            "azure-container-registry-credential",
            "azure-container-registry-password",
            "azure-devops-pat",
            "azure-entra-client-secret",
            "azure-sas-token",
            "azure-storage-account-key",
            "dockerconfig-secret",
            "grafana-api-token",
            "hugging-face-access-token",
            "openai-realtime-client-secret",
            "private-packagist-token",
            "symfony-default-secret",
            "maven-settings-password",
        )
    },
    **{
        k: {"openai-api-key"}
        for k in (
            "openai-admin-api-key",
            "openai-legacy-api-key",
            "openai-project-api-key",
            "openai-service-account-key",
            "openai-service-api-key",
        )
    },
    "maven-settings-passphrase": {"maven-settings-password"},
    "maven-settings-security-master": {"maven-settings-master-password"},
    "jwt-token": {"jwt"},
}
TRIVY_NOT_COVERED: dict[str, str] = {
    "stripe-publishable-token": "pk_ keys are public by design (Stripe embeds them in web front-ends); flagging them is noise",
}
# trivy skips this file by its name ("example"); our rules match per line and have no path
# allowlist, and its one line is the same real-looking AWS secret as aws-secrets.txt line 1.
TRIVY_NEGATIVES_NOT_HONOURED = {"files/example-secret.txt"}

DETECT_SECRETS_KINDS: dict[str, set[str]] = {
    "AWS Access Key": {"aws-access-key-id", "aws-secret-access-key"},  # detect-secrets' one kind covers both
    "Private Key": {"private-key"},
    "Basic Auth Credentials": {"basic-auth-url"},
}
DETECT_SECRETS_NOT_COVERED: dict[str, str] = {
    "Base64 High Entropy String": "entropy heuristics, not a token format: per-line regexes would flood images with hashes and blobs",
    "Hex High Entropy String": "same: every sha/md5 in an image is a high-entropy hex string",
    "Secret Keyword": "detect-secrets' keyword heuristic with its own filters; generic-password/-api-key overlap it but we do not claim it",
}
# gitleaks-nested-archive: secrets inside zip/7z/tar.* members. Layers are scanned file by
# file; we do not descend into archives found inside them (the fixture says such a scanner
# reports nothing for it).


def pack(case: Path) -> bytes:
    """A layer holding every file of a fixture case (but its expected.json) at its relative path."""
    files = sorted(p for p in case.rglob("*") if p.is_file() and p.name != "expected.json")
    return build([Entry(str(p.relative_to(case)), data=p.read_bytes()) for p in files])


@cache
def scan_case(name: str, engine: str) -> LayerResult:
    return scan_layer(pack(SECRETS / name), OPTIONS, engine=engine, name=name)


def hits(name: str, engine: str) -> dict[str, set[tuple[str, int]]]:
    """relative path -> {(rule, line)}"""
    out: dict[str, set[tuple[str, int]]] = {}
    for s in scan_case(name, engine).secrets:
        out.setdefault(s.path.lstrip("/"), set()).add((s.rule, s.line))
    return out


def expected_json(name: str) -> dict:
    return json.loads((SECRETS / name / "expected.json").read_text())


def begin_line(path: Path, start: int) -> int:
    """trivy reports a private key by its body lines; our rule finds the BEGIN line above them."""
    lines = path.read_bytes().split(b"\n")
    return next(n for n in range(start, 0, -1) if b"BEGIN" in lines[n - 1] and b"PRIVATE KEY" in lines[n - 1])


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_planted_corpus_secrets(engine: str) -> None:
    """Every layer of debian-apps (layer 0 is debian-minbase's) and rpm-sqlite: the planted
    secrets on their lines with their rule, and no finding anywhere else."""
    found: set[tuple[str, str, int]] = set()
    text = ""
    for image in ("debian-apps", "rpm-sqlite"):
        for layer in answers(image)["layers"]:
            blob = layer_blob(image, layer["digest"]).read_bytes()
            result = scan_layer(blob, OPTIONS, engine=engine, name=layer["digest"])
            found |= {(s.rule, s.path, s.line) for s in result.secrets}
            text += json.dumps(result.to_json()["secrets"])
    planted = answers("debian-apps")["secrets"]
    kind_to_rule = {"rsa-private-key": "private-key"}
    for secret in planted:
        want = (kind_to_rule.get(secret["kind"], secret["kind"]), secret["path"], secret["line"])
        assert want in found, (
            f"{engine}: planted {secret['kind']} not found at {secret['path']}:{secret['line']}; found {sorted(found)}"
        )
        if secret["kind"] != "rsa-private-key":  # its "value" is the BEGIN line, not a secret
            assert secret["value"] not in text, f"{engine}: the full value of {secret['kind']} is in the output"
    assert {(p, n) for _, p, n in found} == {(s["path"], s["line"]) for s in planted}, (
        "a finding where nothing was planted"
    )


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_trivy_fixtures(engine: str) -> None:
    name = "trivy-builtin-rules"
    exp = expected_json(name)
    got = hits(name, engine)
    missed = []
    for path, case in exp["files"].items():
        for f in case["findings"]:
            if f["rule"] in TRIVY_NOT_COVERED:
                continue
            line = begin_line(SECRETS / name / path, f["startLine"]) if f["rule"] == "private-key" else f["startLine"]
            if not any(rule in TRIVY_KINDS[f["rule"]] and n == line for rule, n in got.get(path, ())):
                missed.append((path, f["rule"], line))
    assert not missed, f"{engine}: expected findings not found: {missed}"
    for path in set(exp["true_negatives"]) - TRIVY_NEGATIVES_NOT_HONOURED:
        assert not got.get(path), f"{engine}: true negative {path} gave {got[path]}"


@pytest.mark.corpus
def test_every_trivy_kind_is_mapped_or_declined() -> None:
    kinds = {f["rule"] for case in expected_json("trivy-builtin-rules")["files"].values() for f in case["findings"]}
    assert kinds == set(TRIVY_KINDS) | set(TRIVY_NOT_COVERED)
    ours = {r.id for r in BUILTIN_RULES}
    assert set().union(*TRIVY_KINDS.values(), *DETECT_SECRETS_KINDS.values()) <= ours


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_detect_secrets_fixtures(engine: str) -> None:
    name = "detect-secrets-test-data"
    exp = expected_json(name)
    got = hits(name, engine)
    assert {f["type"] for f in exp["findings"]} == set(DETECT_SECRETS_KINDS) | set(DETECT_SECRETS_NOT_COVERED)
    missed = [
        (f["file"], f["type"], f["line"])
        for f in exp["findings"]
        if f["type"] in DETECT_SECRETS_KINDS
        and not any(rule in DETECT_SECRETS_KINDS[f["type"]] and n == f["line"] for rule, n in got.get(f["file"], ()))
    ]
    assert not missed, f"{engine}: expected findings not found: {missed}"
    for path in exp["true_negatives"]:
        assert not got.get(path), f"{engine}: true negative {path} gave {got[path]}"


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_gitleaks_plain_files(engine: str) -> None:
    name = "gitleaks-plain-files"
    got = hits(name, engine)
    for f in expected_json(name)["findings"]:
        assert (f["kind"], f["startLine"]) in got.get(f["file"], set()), (
            f"{engine}: {f['kind']} not found at {f['file']}:{f['startLine']}"
        )


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_archives_inside_layers_are_not_opened(engine: str) -> None:
    assert hits("gitleaks-nested-archive", engine) == {}


@pytest.mark.parametrize("rule", BUILTIN_RULES, ids=lambda r: r.id)
def test_rule_compiles_in_hyperscan(rule) -> None:  # type: ignore[no-untyped-def]
    """Exactly where Hyperscan can; look-arounds need the prefilter mode (then `re` confirms)."""
    assert rule.regex is not None
    errors = []
    for flags in (0, hyperscan.HS_FLAG_PREFILTER):
        db = hyperscan.Database(mode=hyperscan.HS_MODE_STREAM)
        try:
            db.compile(expressions=[rule.pattern.encode()], flags=[flags | hyperscan.HS_FLAG_SINGLEMATCH])
            return
        except hyperscan.error as e:
            errors.append(str(e))
    pytest.fail(f"{rule.id} does not compile in Hyperscan: {errors}")


def test_rule_ids_unique() -> None:
    check_unique(default_rules())


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_characters="*\ufffd", blacklist_categories=["Cs"]), min_size=1, max_size=200))
def test_mask_never_holds_the_value(value: str) -> None:
    masked = mask(value.encode())
    assert value.strip() == "" or value.strip() not in masked
    assert len(masked) == len(value.strip())


@pytest.mark.corpus
@pytest.mark.parametrize("engine", ENGINES)
def test_no_finding_holds_its_whole_match(engine: str) -> None:
    """Over every fixture finding: the matched text never appears in what we report."""
    by_id = {r.id: r for r in BUILTIN_RULES}
    for name in ("trivy-builtin-rules", "detect-secrets-test-data", "gitleaks-plain-files"):
        result = scan_case(name, engine)
        contents = {
            "/" + str(p.relative_to(SECRETS / name)): p.read_bytes() for p in (SECRETS / name).rglob("*") if p.is_file()
        }
        for s in result.secrets:
            line = contents[s.path].split(b"\n")[s.line - 1]
            m = by_id[s.rule].matches(line + b"\n")
            assert m is not None
            secret = m.group(0).decode("utf-8", "replace").strip()
            assert secret not in s.masked and secret not in json.dumps(result.to_json()), (
                f"{s.rule} at {s.path}:{s.line}"
            )
