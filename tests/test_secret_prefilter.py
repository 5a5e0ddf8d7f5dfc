"""The secret prefilter never drops a line: Hyperscan over long lines (issue 8, finding 4).

The native engine asks Hyperscan (Debian's Vectorscan) which rules may match a file and
confirms only those with Python `re`; a missed prefilter match would silently lose the
secret. Vectorscan 5.4.9 misses glob matches in paths of 80-120 characters, so here every
built-in rule's example sits in lines of 80-4096 characters at many offsets, one file
per case (a rule matched anywhere else in a file would hide a miss), and both engines
must find every one, fed whole and in small chunks. Anchore's five default rules too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, ScanOptions
from layerscan.scan.rules import BUILTIN_RULES, default_rules
from scancheck import assert_same
from tarbuilder import Entry, build


def alnum(n: int) -> str:
    """n letters and digits, never a run a rule's look-around would reject."""
    return ("Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv" * (n // 32 + 1))[:n]


# One value each built-in rule must find (all fake), with the context the rule needs.
EXAMPLES: dict[str, str] = {
    "aws-access-key-id": "AKIAZ4QW7R2M9XK3T6BV",
    "aws-secret-access-key": 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "private-key": "-----BEGIN RSA PRIVATE KEY-----",
    "github-pat": "ghp_" + alnum(36),
    "github-oauth": "gho_" + alnum(36),
    "github-app-token": "ghs_" + alnum(36),
    "github-refresh-token": "ghr_" + alnum(76),
    "github-fine-grained-pat": "github_pat_11ABCDEFG0_" + alnum(71),
    "gitlab-token": "glpat-Xy7Qm2Lk9Pz4Rt8Vw1Nb",
    "gitlab-runner-registration-token": "GR1348941" + alnum(20),
    "slack-token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "slack-app-token": "xapp-1-A0123BCDEFG-1234567890123-0123456789abcdef0123456789abcdef",
    "slack-webhook-url": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "stripe-secret-key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "google-api-key": "AIza" + alnum(35),
    "google-oauth-client-secret": "GOCSPX-" + alnum(28),
    "npm-access-token": "npm_" + alnum(36),
    "pypi-upload-token": "pypi-AgEIcHlwaS5vcmc" + alnum(60),
    "docker-config-auth": '"auth": "dXNlcjpwYXNzd29yZA=="',
    "dockerconfig-secret": ".dockerconfigjson: eyJhdXRocyI6e30=",
    "openai-api-key": "sk-proj-abcdefghij0123456789T3BlbkFJabcdefghij0123456789",
    "openai-realtime-client-secret": "ek_0123456789abcdef0123456789abcdef",
    "anthropic-api-key": "sk-ant-api03-" + alnum(90),
    "hugging-face-access-token": "hf_" + alnum(36),
    "alibaba-access-key-id": "LTAI" + alnum(20),
    "azure-ai-services-key": alnum(52) + "JQQJ99" + alnum(18) + "ACOG" + alnum(4),
    "azure-container-registry-credential": alnum(52) + "JQQJ99" + alnum(18) + "AZCR" + alnum(4),
    "azure-storage-account-key": "AccountKey=" + alnum(84) + "+/==",
    "azure-app-config-connection-string": "Endpoint=https://demo.azconfig.io;Id=Ab1-l0-s0:Cd2;Secret=Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv=",
    "azure-sas-token": "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2030-01-01&sig=Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv%3D",
    "azure-entra-client-secret": "Ab18Q~" + alnum(32),
    "azure-devops-pat": "azure_devops_pat = " + "abcdefghijklmnopqrstuvwxyz234567" + "abcdefghijklmnopqrst",
    "azure-container-registry-password": "demo.azurecr.io password=Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv",
    "grafana-api-token": "eyJrIjoi" + alnum(80),
    "grafana-cloud-token": "glc_" + alnum(40),
    "grafana-service-account-token": "glsa_" + alnum(32) + "_0a1b2c3d",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private-packagist-token": "packagist_ort_" + "0a1b2c3d4e5f6789" * 4 + "0a1b",
    "symfony-default-secret": "ThisTokenIsNotSoSecretChangeIt",
    "maven-settings-password": "<password>s3cr3tP4ss</password>",
    "maven-settings-master-password": "<master>s3cr3tM4ster</master>",
    "sendgrid-api-key": "SG." + alnum(22) + "." + alnum(43),
    "shopify-token": "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",
    "digitalocean-token": "dop_v1_" + "0a1b2c3d4e5f6789" * 4,
    "telegram-bot-token": "123456789:AA" + alnum(33),
    "age-secret-key": "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" + "QPZRY9X8GF2TVDW0S3JN54KHCE",
    "basic-auth-url": "https://admin:s3cr3tpw@db.example.com",
    "generic-api-key": 'api_key = "Ab1Cd2Ef3Gh4Ij5Kl6"',
    "generic-password": 'password = "hunter2hunter2"',
    # Anchore's five (re.match over the line: PRIV_KEY only at its start)
    "AWS_ACCESS_KEY": "aws_access_key_id = AKIAZ4QW7R2M9XK3T6BV",
    "AWS_SECRET_KEY": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "PRIV_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "DOCKER_AUTH": '"auth": "dXNlcjpwYXNzd29yZA=="',
    "API_KEY": "api_key = ABCDEFGHIJ0123456789XYZ",
}
RULES = {r.id: r for r in default_rules()}
# Lowercase words, spaces and commas: no rule matches them, and a space ends every token.
FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
LENGTHS = (80, 97, 120, 255, 256, 1000, 4096)  # of the secret's line, its newline included


def line(length: int, offset: int, secret: str) -> str:
    """A line of `length` characters (with its newline) holding `secret` at `offset`."""
    head = (FILLER * (offset // len(FILLER) + 1))[: offset - 1] + " " if offset else ""
    tail = " " + FILLER * (length // len(FILLER) + 1)
    return (head + secret + tail)[: length - 1] + "\n"


def offsets(length: int, size: int) -> Iterator[int]:
    """Start, near start, the 64-byte boundaries, middle, end: where the secret fits."""
    last = length - 1 - size
    yield from sorted({o for o in (0, 1, 2, 63, 64, 65, 127, 128, length // 2, last - 1, last) if 0 <= o <= last})


# A whole line that only generic-password's "^...$" (.env) form matches.
ENV_LINE = "DB_PASSWORD=s3cr3tValue99\n"


def cases() -> list[tuple[str, str, int | None]]:
    """(path, file content, the line its rule matches or None) for every rule, length and offset;
    then the .env line at the start of a file and after lines of 1-4096 characters in all."""
    out: list[tuple[str, str, int | None]] = []
    for rule, secret in EXAMPLES.items():
        for length in LENGTHS:
            for offset in offsets(length, len(secret)):
                before = line(37 + offset % 200, 0, "")  # a first line, so the secret's line starts anywhere
                text = line(length, offset, secret)
                content = before + text + line(90, 0, "")
                hit = 2 if RULES[rule].matches(text.encode()) else None
                out.append((f"/srv/{rule}/{length}-{offset}.txt", content, hit))
    for at in (0, 1, 63, 64, 65, 80, 97, 120, 255, 256, 1000, 4095, 4096):
        before = "".join(line(n, 0, "") for n in (at // 3, at - at // 3) if n)
        out.append((f"/srv/generic-password/env-{at}.txt", before + ENV_LINE, before.count("\n") + 1))
    return out


CASES = cases()


def scan(layer: bytes, engine: str, chunk: int | None) -> LayerResult:
    options = ScanOptions(rules=tuple(RULES.values()))
    if chunk is None:
        return scan_layer(layer, options, engine=engine)
    return scan_layer((layer[i : i + chunk] for i in range(0, len(layer), chunk)), options, engine=engine)


@pytest.fixture(scope="module")
def layer() -> bytes:
    return build([Entry(path.lstrip("/"), data=content.encode()) for path, content, _ in CASES])


@pytest.fixture(scope="module")
def reference(layer: bytes) -> LayerResult:
    return scan(layer, "reference", None)


def test_every_default_rule_has_an_example_it_matches() -> None:
    assert RULES["generic-password"].matches(ENV_LINE.encode())
    assert set(EXAMPLES) == set(RULES) and {r.id for r in BUILTIN_RULES} <= set(RULES)
    for rule in RULES.values():
        assert rule.matches(EXAMPLES[rule.id].encode()), rule.id
        for length in LENGTHS:
            for offset in offsets(length, len(EXAMPLES[rule.id])):
                text = line(length, offset, EXAMPLES[rule.id])
                assert len(text) == length and text.index(EXAMPLES[rule.id]) == offset


def test_cases_cover_long_lines() -> None:
    assert len(CASES) > len(RULES) * len(LENGTHS) * 3
    assert sum(1 for *_, hit in CASES if hit is None) < len(CASES) // 50  # PRIV_KEY past a line's start


def found(result: LayerResult) -> set[tuple[str, str, int]]:
    return {(s.rule, s.path, s.line) for s in result.secrets}


def test_reference_finds_every_example(reference: LayerResult) -> None:
    want = {(path.split("/")[2], path, hit) for path, _, hit in CASES if hit}
    got = found(reference)
    assert want <= got, sorted(want - got)[:5]


@pytest.mark.parametrize("chunk", [None, 61, 4093], ids=["whole", "chunks-61", "chunks-4093"])
def test_native_prefilter_misses_nothing(layer: bytes, reference: LayerResult, chunk: int | None) -> None:
    """Every (rule, file, line) the reference finds, the native engine finds: no prefilter miss."""
    native = scan(layer, "native", chunk)
    missed = found(reference) - found(native)
    assert not missed, f"{len(missed)} missed, e.g. {sorted(missed)[:5]}"
    assert_same(native, reference)
