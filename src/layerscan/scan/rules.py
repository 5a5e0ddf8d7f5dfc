"""Secret and content rules, and the line-by-line confirmation both engines share.

Matching is per line, as in Anchore (`re.match(regex, line)` over the bytes lines of
`readlines()`): a rule either matches a line or does not, and a hit is (rule, line).
The native engine uses Hyperscan only as a prefilter: it names the files and rules
that may match, and `confirm()` below decides with Python `re` on each line. So both
engines agree by construction, and look-around works wherever Python allows it.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence

from ..errors import RuleError
from .allow import ALLOWED_SOURCES, COVERED, Docstrings, allowed_by, coverable, specific
from .model import SecretHit


@dataclasses.dataclass(frozen=True)
class Rule:
    """One named regex. `anchored` rules use `re.match` (Anchore's form), others `re.search`."""

    id: str
    pattern: str
    anchored: bool = False
    kind: str = "secret"  # or "content" (Anchore's content_search)
    # "builtin", "default" (Anchore's five when no analyzer_config.yaml names rules), "anchore" (read
    # from analyzer_config.yaml), "config" (secret_rules); allow rules apply to builtin and default only.
    source: str = "builtin"

    @property
    def regex(self) -> re.Pattern[bytes]:
        return _compile(self.pattern)

    def matches(self, line: bytes) -> re.Match[bytes] | None:
        return (self.regex.match if self.anchored else self.regex.search)(line)


_cache: dict[str, re.Pattern[bytes]] = {}


def _compile(pattern: str) -> re.Pattern[bytes]:
    rx = _cache.get(pattern)
    if rx is None:
        try:
            rx = _cache[pattern] = re.compile(pattern.encode())
        except re.error as e:
            raise RuleError(f"rule regex {pattern!r} does not compile: {e}") from None
    return rx


def parse_anchore_rule(spec: str, kind: str = "secret", source: str = "anchore") -> Rule:
    """`NAME=regex` as in Anchore's analyzer_config.yaml; the regex is all after the first '='."""
    name, sep, pattern = spec.partition("=")
    if not sep or not name:
        raise RuleError(f"rule {spec!r} is not of the form NAME=regex")
    rule = Rule(id=name, pattern=pattern, anchored=True, kind=kind, source=source)
    _ = rule.regex  # compile now, so a bad rule fails at load time
    return rule


# Anchore Engine's five defaults (conf/analyzer_config.yaml), kept verbatim.
ANCHORE_DEFAULT_SPECS: tuple[str, ...] = (
    r"AWS_ACCESS_KEY=(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
    r"AWS_SECRET_KEY=(?i).*aws_secret_access_key( *=+ *).*(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]).*",
    r"PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+",
    r'DOCKER_AUTH=(?i).*"auth": *".+"',
    r"API_KEY=(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*",
)


def anchore_default_rules() -> list[Rule]:
    """Anchore's five as layerscan's defaults (source "default": allow rules apply to them;
    read from analyzer_config.yaml they are source "anchore" and keep Anchore's semantics)."""
    return [parse_anchore_rule(s, source="default") for s in ANCHORE_DEFAULT_SPECS]


# Written by us from the public token formats. Ids are kebab-case, like gitleaks' and trivy's.
# Each pattern is Python `re` over one line (bytes); Hyperscan compiles them, exactly or as
# a prefilter (look-around), see tests/test_secret_rules.py. Bounded look-arounds keep a
# token from matching inside a longer word.
_B64 = "A-Za-z0-9+/"
BUILTIN_RULES: tuple[Rule, ...] = (
    # AWS: key ids by their documented prefixes; secrets (40 base64 chars) next to a key name.
    Rule("aws-access-key-id", r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    Rule(
        "aws-secret-access-key",
        r"(?i)aws_?(?:sec(?:ret)?)?_?(?:access)?_?key(?:_id)?[\"']?\s{0,30}(?::|=>|=)?\s{0,30}[\"']?"
        rf"(?-i:(?<![{_B64}])[{_B64}=]{{40}}(?![{_B64}=]))",
    ),
    # PEM and OpenSSH/PGP armour of any private key (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK).
    Rule("private-key", r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"),
    # GitHub (by prefix, as GitHub's own scanning does: a longer run still holds the token): classic, OAuth, user-to-server/server-to-server (also the stateless ghs_<id>_<jwt>), refresh, fine-grained.
    Rule("github-pat", r"(?<![A-Za-z0-9_])ghp_[0-9A-Za-z]{36}"),
    Rule("github-oauth", r"(?<![A-Za-z0-9_])gho_[0-9A-Za-z]{36}"),
    Rule(
        "github-app-token",
        r"(?<![A-Za-z0-9_])(?:ghu|ghs)_(?:[0-9A-Za-z]{36}|[0-9]+_[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
    ),
    Rule("github-refresh-token", r"(?<![A-Za-z0-9_])ghr_[0-9A-Za-z]{76}"),
    Rule("github-fine-grained-pat", r"github_pat_[0-9A-Za-z_]{82}(?![0-9A-Za-z_])"),
    # GitLab: personal, deploy, runner, CI build, pipeline trigger, feed, incoming mail, agent, SCIM, OAuth app tokens.
    Rule(
        "gitlab-token",
        r"(?<![A-Za-z0-9_-])(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|gloas)-[0-9A-Za-z_.-]{20,}(?![0-9A-Za-z_-])",
    ),
    Rule("gitlab-runner-registration-token", r"(?<![A-Za-z0-9])GR1348941[0-9A-Za-z_-]{20}(?![0-9A-Za-z_-])"),
    # Slack: bot/user/app/refresh tokens and webhooks.
    Rule("slack-token", r"(?<![A-Za-z0-9])xox[abposre]-[0-9]{8,14}-[0-9A-Za-z-]{10,}"),
    Rule("slack-app-token", r"(?<![A-Za-z0-9])xapp-[0-9]-[A-Z0-9]{8,}-[0-9]{8,}-[a-z0-9]{32,}"),
    Rule("slack-webhook-url", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{43,56}"),
    # Stripe secret and restricted keys (publishable pk_ keys are public by design).
    Rule("stripe-secret-key", r"(?<![A-Za-z0-9])(?:sk|rk)_(?:test|live|prod)_[0-9A-Za-z]{10,99}(?![0-9A-Za-z])"),
    Rule("google-api-key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    Rule("google-oauth-client-secret", r"(?<![A-Za-z0-9_-])GOCSPX-[0-9A-Za-z_-]{28}(?![0-9A-Za-z_-])"),
    Rule("npm-access-token", r"(?<![A-Za-z0-9_])npm_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    Rule("pypi-upload-token", r"(?<![A-Za-z0-9_-])pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_-]{50,}"),
    # Docker: a config.json "auth" entry, and Kubernetes dockerconfig secrets (base64 JSON).
    Rule("docker-config-auth", r"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{8,}={0,2}\""),
    Rule("dockerconfig-secret", r"\.docker(?:configjson|cfg)[\"']?\s*:\s*[\"']?e[wy][A-Za-z0-9+/]{6,}={0,2}"),
    # OpenAI: legacy, project, service-account, admin and service keys carry the T3BlbkFJ watermark.
    Rule(
        "openai-api-key",
        r"(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|service-[A-Za-z0-9]+)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20})"
        r"T3BlbkFJ[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])",
    ),
    Rule("openai-realtime-client-secret", r"(?<![A-Za-z0-9_])ek_[0-9a-f]{32}(?![0-9A-Za-z])"),
    Rule("anthropic-api-key", r"(?<![A-Za-z0-9_-])sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}"),
    Rule("hugging-face-access-token", r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{34,40}(?![A-Za-z0-9])"),
    Rule("alibaba-access-key-id", r"(?<![A-Za-z0-9])LTAI[A-Za-z0-9]{20}(?![A-Za-z0-9])"),
    # Azure: Cognitive Services / Container Registry keys (84 chars, JQQJ99 and a provider signature),
    # storage account keys, App Configuration connection strings, SAS tokens, Entra client secrets,
    # DevOps PATs (52 base32 chars next to a DevOps name), registry passwords next to <name>.azurecr.io.
    Rule(
        "azure-ai-services-key",
        r"(?<![A-Za-z0-9])[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{18}ACOG[A-Za-z0-9]{4}(?![A-Za-z0-9])",
    ),
    Rule(
        "azure-container-registry-credential",
        r"(?<![A-Za-z0-9])[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{18}AZCR[A-Za-z0-9]{4}(?![A-Za-z0-9])",
    ),
    Rule("azure-storage-account-key", rf"(?i)AccountKey=(?-i:[{_B64}]{{86}}==)"),
    Rule(
        "azure-app-config-connection-string",
        r"(?i)Endpoint=https://[a-z0-9-]+\.azconfig\.io;Id=[^;\s]+;Secret=[A-Za-z0-9+/=]{30,}",
    ),
    Rule(
        "azure-sas-token",
        r"(?<![A-Za-z0-9])sv=[0-9]{4}-[0-9]{2}-[0-9]{2}&\S{0,400}?sig=[A-Za-z0-9%+/]{30,}(?:=|%3D){0,2}",
    ),
    Rule(
        "azure-entra-client-secret",
        r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
    ),
    Rule(
        "azure-devops-pat",
        r"(?i)(?:azure[_-]?devops|\bado|vsts)[a-z0-9_-]{0,20}[\"']?\s*[:=]\s*[\"']?(?-i:[a-z2-7]{52})(?![A-Za-z0-9])",
    ),
    Rule(
        "azure-container-registry-password",
        r"(?i)[a-z0-9-]+\.azurecr\.io\b.{0,80}?(?:password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?(?-i:[A-Za-z0-9/+=]{32,})",
    ),
    # Grafana: API keys (base64 of {"k":"), cloud tokens, service account tokens.
    Rule("grafana-api-token", r"(?<![A-Za-z0-9+/])eyJrIjoi[A-Za-z0-9+/]{70,400}={0,2}"),
    Rule("grafana-cloud-token", r"(?<![A-Za-z0-9_])glc_[A-Za-z0-9+/]{32,400}={0,2}"),
    Rule("grafana-service-account-token", r"(?<![A-Za-z0-9_])glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?![A-Za-z0-9])"),
    Rule("jwt", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    Rule("private-packagist-token", r"(?<![A-Za-z0-9_])packagist_(?:ort|out|uut)_[A-Fa-f0-9]{68}(?![A-Za-z0-9])"),
    Rule("symfony-default-secret", r"ThisTokenIsNotSoSecretChangeIt"),
    # Maven settings.xml / settings-security.xml: plain values, not {encrypted} nor ${placeholders}.
    Rule("maven-settings-password", r"<(?:password|passphrase)>\s*[^\s{$<][^<]*</(?:password|passphrase)>"),
    Rule("maven-settings-master-password", r"<master>\s*[^\s{$<][^<]*</master>"),
    Rule("sendgrid-api-key", r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
    Rule("shopify-token", r"(?<![A-Za-z0-9])shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])"),
    Rule("digitalocean-token", r"(?<![A-Za-z0-9])do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])"),
    Rule("telegram-bot-token", r"(?<![A-Za-z0-9:])[0-9]{8,10}:AA[0-9A-Za-z_-]{33}(?![0-9A-Za-z_-])"),
    Rule("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    # user:password@ in a URL; not ${VAR} nor <placeholder> nor the word "password" itself.
    Rule(
        "basic-auth-url",
        r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^:/\s@\"'<>]{1,64}:(?!password@)[^@/\s\"'$<>]{3,128}@[a-z0-9.-]+",
    ),
    Rule(
        "generic-api-key",
        r"(?i)(?:api|access|auth|secret)[_-]?(?:key|token)[\"']?\s*(?::|=>|=)\s*[\"']"
        r"[0-9A-Za-z_\-+/=.]{16,}[\"']",
    ),
    # password = "quoted" anywhere; unquoted only as a whole .env line (DB_PASSWORD=...), since
    # in code an unquoted right-hand side is a variable, not a value.
    Rule(
        "generic-password",
        r"(?i)(?:(?<![A-Za-z0-9])passw(?:or)?d|(?<![A-Za-z0-9_])pwd)[\"']?\s*(?::|=>|=)\s*[\"'][^\"'\s]{6,}[\"']"
        r"|^(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|PWD)=[^\s\"'$<{][^\s\"']{7,}\s*$",
    ),
)


def builtin_rules() -> list[Rule]:
    return list(BUILTIN_RULES)


def default_rules() -> list[Rule]:
    """Ours first, then Anchore's five for compatibility."""
    return builtin_rules() + anchore_default_rules()


def check_unique(rules: Sequence[Rule]) -> None:
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RuleError(f"two rules share the id {r.id!r}")
        seen.add(r.id)


def split_lines(content: bytes) -> Iterator[bytes]:
    """Lines as `readlines()` gives them: split on b'\\n' only, each keeping its newline."""
    start = 0
    n = len(content)
    while start < n:
        end = content.find(b"\n", start)
        if end < 0:
            yield content[start:]
            return
        yield content[start : end + 1]
        start = end + 1


def mask(value: bytes) -> str:
    """Enough of a value to recognise it, never enough to use it."""
    text = value.decode("utf-8", "replace").strip()
    if len(text) <= 8:
        return "*" * len(text)
    keep = min(4, len(text) // 5)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[len(text) - keep :]


def confirm(path: str, content: bytes, rules: Iterable[Rule]) -> list[SecretHit]:
    """Every (rule, line) where the rule matches a line of `content`, in line order, each with the
    allow rule that calls it an example (layerscan's own rules only; see allow.py)."""
    rules = list(rules)
    hits: list[SecretHit] = []
    docstrings = Docstrings(content)
    start = 0  # of the line
    lines = itertools.pairwise(itertools.chain(split_lines(content), (b"",)))
    for lineno, (line, next_line) in enumerate(lines, 1):
        found: list[tuple[Rule, SecretHit]] = []
        for rule in rules:
            m = rule.matches(line)
            if m is not None:
                allowed = ""
                if rule.source in ALLOWED_SOURCES:
                    allowed = allowed_by(rule.id, path, line, m.group(0), next_line, start + m.start(), docstrings)
                found.append((rule, SecretHit(rule.id, path, lineno, mask(m.group(0)), allowed)))
        if len(found) > 1 and any(specific(r.id, r.source) and not h.allowed_by for r, h in found):
            found = [
                (r, h._replace(allowed_by=COVERED))
                if not h.allowed_by and r.source in ALLOWED_SOURCES and coverable(r.id, r.source)
                else (r, h)
                for r, h in found
            ]
        hits.extend(h for _, h in found)
        start += len(line)
    return hits


def is_binary(head: bytes) -> bool:
    """A NUL in the first 8000 bytes marks a file binary, as git and grep decide."""
    return b"\0" in head[:8000]
