"""The allow rules (scan/allow.py): each suppresses its example values and keeps real ones.

Through confirm(), the one function both engines call, so what is checked here is what
either engine records; the pipeline tests check the counts (stats.secrets_suppressed),
--secrets-all, Anchore's rules left alone and the result cache keys.
"""

from __future__ import annotations

import ast
import bisect
import io
import itertools
import json
import re
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from imagebuilder import Image, Layer, f, oci_layout, write_dir
from layerscan.config import Config, load_config
from layerscan.pipeline import analyze, scan_options
from layerscan.report.anchore import write as write_anchore
from layerscan.report.table import write as write_table
from layerscan.scan import ENGINES, allow, scan_layer
from layerscan.scan.allow import ALLOW_RULE_IDS, Docstrings, entropy, package_path, patterned
from layerscan.scan.model import ScanOptions
from layerscan.scan.rules import ANCHORE_DEFAULT_SPECS, BUILTIN_RULES, confirm, default_rules, parse_anchore_rule
from layerscan.store.results import ResultCache
from tarbuilder import Entry, build

ENGINE = "native"
RULES = default_rules()
SITE = "/usr/local/lib/python3.11/site-packages"
# Real formats with random values: none of them may ever be allowed.
GHP = "ghp_" + "R8fKq2Zs7LmW4xTb9NcJ3vYh6PdQ1gUe5aXo"
AKIA = "AKIA" + "Q3ZT7WNM2KX5RVLD"
AWS_SECRET = "h7Gk2Lq9" + "Zr4Tw8Vb1Nc6Xm3Pd5Fs0Jy2Ke7Ua9Hq"
SLACK = "xoxb-" + "482910573621-5920184736251-Qz8Rk3Tn7Wb2Lm5Xc9Vd4Fh6"


def verdicts(path: str, text: str) -> dict[str, str]:
    """rule -> allow rule ("" when reported) for every hit on the first line of `text`."""
    return {h.rule: h.allowed_by for h in confirm(path, text.encode(), RULES) if h.line == 1}


def allowed(path: str, text: str) -> set[str]:
    found = verdicts(path, text)
    assert found, f"no rule matched {text!r}"
    return set(found.values())


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "known-example"),
        ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n', "known-example"),
        ('"access_token":"2YotnFZFEjr1zCsicMWpAA",\n', "known-example"),  # RFC 6749's example
        ("token = ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij\n", "patterned-value"),
        ("GITHUB_TOKEN=ghp_0123456789abcdefghijklmnopqrstuvwxyz\n", "patterned-value"),
        ("key = sk_live_xxxxxxxxxxxxxxxxxxxxxxxx\n", "patterned-value"),
        ('password = "${DB_PASSWORD}"\n', "placeholder"),
        ('api_key = "YOUR_API_KEY_HERE"\n', "placeholder"),
        ('password: "{{vault_db_password}}"\n', "placeholder"),
        ('password = "********"\n', "placeholder"),
        ("DATABASE_URL = 'postgresql://user:pass@db.internal/app'\n", "url-placeholder"),
        ("url = 'https://user:secret@gitlab.internal/path'\n", "url-placeholder"),
        ("engine = create_engine('postgresql://scott:tiger@localhost/test')\n", "url-placeholder"),
        ("redis://[[username]:[password]]@localhost:6379/0\n", "url-placeholder"),
        ('    "mssql+pyodbc://scott:tiger^5HHH@mssql2017:1433/test",\n', "url-placeholder"),
        ("amqp://Kx7qPz2:Lm9Wr4tZ@broker.test//\n", "url-placeholder"),
        ('password = "hunter22"\n', "weak-generic-value"),
        ('api_key = "AWS_CONTAINER_AUTHORIZATION_TOKEN"\n', "weak-generic-value"),
        ('PASSWORD: "challengePassword",\n', "weak-generic-value"),
        ('"PWD": "/Users/someone",\n', "weak-generic-value"),
        ('PEM_HEADER = b"-----BEGIN RSA PRIVATE KEY-----"\n', "pem-without-body"),
    ],
)
def test_value_rules_allow_examples_anywhere(text: str, rule: str) -> None:
    assert allowed("/app/src/settings.py", text) == {rule}


@pytest.mark.parametrize(
    "text",
    [
        f'GITHUB_TOKEN = "{GHP}"\n',
        f"aws_access_key_id = {AKIA}\n",
        f"aws_secret_access_key = {AWS_SECRET}\n",
        f"client = WebClient('{SLACK}')\n",
        'password = "Zq8#rT2!vLm9"\n',
        'api_key = "9fK2mQ7xLp4Rt8Zw3Nv6Bc1Hy5Js0Dg"\n',
        "DATABASE_URL = 'postgresql://shop:Xb7rQ2mLz9Kw@db.internal:5432/shop'\n",
        "url = 'https://user:Xb7rQ2mLz9Kw@db.local/app'\n",
        "DB_PASSWORD=Xb7rQ2mLz9Kw\n",
    ],
)
def test_real_values_are_reported(text: str) -> None:
    for path in ("/app/src/settings.py", f"{SITE}/vendored/client.py", "/app/node_modules/sdk/lib/index.js"):
        v = verdicts(path, text)
        assert v and "" in v.values(), f"{text!r} in {path}: {v}"


def test_private_key_with_a_body_is_reported() -> None:
    body = "MIIEowIBAAKCAQEAu/Nua0/1y08gkbnBfKd6VDHia8Na0ATgMQqZ4YEbi/t73g84IEPQ"
    for text in (f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n", f'key = "-----BEGIN PRIVATE KEY-----\\n{body}"\n'):
        assert verdicts("/app/key.pem", text)["private-key"] == ""
    assert (
        verdicts("/app/k", "-----BEGIN PRIVATE KEY-----4c6f4a5cb2d395f828384c2ab29d1f55-----END\n")["private-key"] == ""
    )


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (f"{SITE}/requests/README.md", "package-docs"),
        (f"{SITE}/kombu/docs/userguide/connections.txt", "package-docs"),
        (f"{SITE}/botocore-1.35.0.dist-info/METADATA", "package-docs"),
        ("/usr/share/doc/python3-redis/README", "package-docs"),
        (f"{SITE}/sqlalchemy/testing/fixtures.py", "package-tests"),
        (f"{SITE}/celery/tests/test_app.py", "package-tests"),
        ("/app/node_modules/axios/test/unit/auth.test.js", "package-tests"),
        ("/app/node_modules/@babel/core/lib/config.spec.ts", "package-tests"),
        (f"{SITE}/transformers/testing_utils.py", "package-tests"),
        (f"{SITE}/click/testing.py", "package-tests"),
        (f"{SITE}/pandas/_testing/asserters.py", "package-tests"),
        ("/app/node_modules/pkg/lib/test-utils.js", "package-tests"),
        (f"{SITE}/botocore/data/s3/2006-03-01/examples-1.json", "package-examples"),
        ("/app/node_modules/webpack/examples/basic/config.js", "package-examples"),
    ],
)
def test_path_rules_allow_inside_packages_only(path: str, rule: str) -> None:
    text = f'token = "{GHP}"\n'
    assert allowed(path, text) == {rule}
    # The same file name in the app's own tree is the app's: reported.
    own = "/app/" + path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]
    assert "" in verdicts(own, text).values(), own


def test_package_comment_is_for_generic_rules_in_packages() -> None:
    line = "    # e.g. sqla+mysql://root:masterkey@db.internal/\n"
    assert allowed(f"{SITE}/kombu/connection.py", line) == {"package-comment"}
    assert allowed("/app/src/db.py", line) == {""}
    assert allowed(f"{SITE}/kombu/connection.py", f"# token {GHP}\n") == {""}  # a real token in a comment


EXCERPTS = Path(__file__).parent / "fixtures" / "library-excerpts"
# transformers 5.24.0, transformers/testing_utils.py lines 219-225: a token for its CI's hub account.
TRANSFORMERS_TESTING_UTILS = (
    '# Used to test the hub\nUSER = "__DUMMY_TRANSFORMERS_USER__"\nENDPOINT_STAGING = "https://hub-ci.huggingface.co"\n\n'
    '# Not critical, only usable on the sandboxed CI instance.\nTOKEN = "hf_' + '94wBhPGp6KrrTH3KDchhKpRxZwd6dmHWLL"\n'
)


def library_hits(excerpt: str) -> list[tuple[str, int, str]]:
    """(rule, line, allow rule) of every reported or allowed hit in a library excerpt."""
    text = (EXCERPTS / excerpt).read_bytes()
    return [(h.rule, h.line, h.allowed_by) for h in confirm(f"{SITE}/x/module.py", text, RULES)]


@pytest.mark.parametrize(
    ("excerpt", "line", "rule"),
    [
        ("fsspec-github.py.txt", 19, "basic-auth-url"),  # 'github://org:repo@sha/precip/catalog.yml'
        ("pydantic-networks.py.txt", 7, "basic-auth-url"),  # MultiHostUrl('https://foo.com:123,foo:bar@bar.com/path')
        ("pydantic-types.py.txt", 44, "generic-password"),  # Model(password='IAmSensitive', ...)
    ],
)
def test_docstrings_of_installed_python_code(excerpt: str, line: int, rule: str) -> None:
    """The libraries' own words (the findings on the library benchmark image before this rule)."""
    hits = library_hits(excerpt)
    assert (rule, line, "package-docstring") in hits
    assert all(allowed for *_, allowed in hits), hits
    text = (EXCERPTS / excerpt).read_bytes()
    # The same text in the app's own code, or vendored into it, is the app's: reported.
    for path in ("/app/src/models.py", "/app/vendor/pydantic/types.py", f"{SITE}/x/README.txt"):
        found = {(h.rule, h.line): h.allowed_by for h in confirm(path, text, RULES)}
        assert found[(rule, line)] != "package-docstring", path


def test_test_support_of_installed_packages() -> None:
    """transformers' token for its CI's hub account, in its test utilities; the same line in the
    package's own code, or in an app's testing_utils.py, is reported."""
    text = TRANSFORMERS_TESTING_UTILS.encode()
    for path, verdict in (
        (f"{SITE}/transformers/testing_utils.py", "package-tests"),
        (f"{SITE}/transformers/modeling_utils.py", ""),
        ("/app/src/testing_utils.py", ""),
    ):
        assert [(h.rule, h.line, h.allowed_by) for h in confirm(path, text, RULES)] == [
            ("hugging-face-access-token", 6, verdict)
        ], path


def test_docstring_rule_reports_real_values_outside_docstrings() -> None:
    password = 'password = "Zq8#rT2!vLm9"'
    module = (
        f'"""Settings.\n\nA token of a real format is reported, even here: {GHP}\n"""\n'
        f"{password}\n"  # code
        f'TEMPLATE = """\n{password}\n"""\n'  # a string assigned, not documentation
        f'render(\n    """\n    {password}\n    """,\n)\n'  # an argument
        f'x = \'"""\'  # a triple quote inside a string opens nothing\n{password}\n'
        f'def f():\n    r"""Doc \\""" {password}\n    """\n'  # an escaped quote does not close it
    )
    hits = {(h.rule, h.line): h.allowed_by for h in confirm(f"{SITE}/pkg/settings.py", module.encode(), RULES)}
    assert hits == {
        ("github-pat", 3): "",
        ("generic-password", 5): "",
        ("generic-password", 7): "",
        ("generic-password", 11): "",
        ("generic-password", 15): "",
        ("generic-password", 17): "package-docstring",
    }


def test_docstrings_agree_with_the_python_parser() -> None:
    """Docstrings finds exactly the standalone triple-quoted strings ast does, over real modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [*sorted(stdlib.glob("[a-m]*.py")), *sorted(Path(allow.__file__).parent.glob("*.py"))]
    checked = 0
    for path in files:
        text = path.read_bytes()
        starts = [0, *itertools.accumulate(len(line) for line in text.splitlines(keepends=True))]
        expected: list[tuple[int, int]] = []
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                begin = starts[node.lineno - 1] + node.col_offset
                quote = re.match(rb"[rRuU]?(\"{3}|'{3})", text[begin:])
                if quote is not None:  # from its quote (after an r or u prefix) to its end
                    expected.append((begin + quote.start(1), starts[node.end_lineno - 1] + node.end_col_offset))  # type: ignore[operator]
        docstrings = Docstrings(text)
        expected.sort()
        # At every quote, comment and line end, inside a docstring exactly where ast says.
        for m in re.finditer(rb"[\"'#\n]", text):
            i = bisect.bisect_right(expected, (m.start(), len(text))) - 1
            inside = i >= 0 and expected[i][0] <= m.start() < expected[i][1]
            assert docstrings.covers(m.start()) == inside, (path, m.start())
        checked += len(expected)
    assert checked > 1000


def test_generic_rules_covered_by_a_specific_rule() -> None:
    v = verdicts("/app/pay.py", "stripe.api_key = 'sk_live_51Hq8ZtR2kLmN4vXwY7pQ3sD9fGhJ6bC'\n")
    assert v == {"stripe-secret-key": "", "generic-api-key": "covered-by-specific-rule", "API_KEY": ""}
    # Anchore's five stay beside ours: an Anchore policy names them.
    v = verdicts("/app/config/aws.ini", f"aws_access_key_id = {AKIA}\n")
    assert v == {"aws-access-key-id": "", "AWS_ACCESS_KEY": ""}
    # Alone on its line, a generic rule is reported.
    assert verdicts("/app/pay.py", 'api_key = "9fK2mQ7xLp4Rt8Zw3Nv6Bc1Hy5Js0Dg"\n')["generic-api-key"] == ""


def test_rules_from_anchore_config_and_users_are_never_allowed() -> None:
    anchore = [parse_anchore_rule(s) for s in ANCHORE_DEFAULT_SPECS]
    assert {r.source for r in anchore} == {"anchore"} and {r.source for r in RULES[-5:]} == {"default"}
    text = b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n-----BEGIN RSA PRIVATE KEY-----\n"
    hits = confirm(f"{SITE}/botocore/docs/README.md", text, anchore)
    assert {h.rule for h in hits} == {"AWS_ACCESS_KEY", "PRIV_KEY"} and all(h.allowed_by == "" for h in hits)
    # In a docstring of an installed package: allowed as a default, Anchore's own where configured.
    doc = b'def connect():\n    """Connect.\n\n    api_key = Q3ZT7WNM2KX5RVLDH8J4PC6B9FAE1YGS\n    """\n'
    assert [(h.rule, h.allowed_by) for h in confirm(f"{SITE}/sdk/client.py", doc, RULES[-5:])] == [
        ("API_KEY", "package-docstring")
    ]
    assert [(h.rule, h.allowed_by) for h in confirm(f"{SITE}/sdk/client.py", doc, anchore)] == [("API_KEY", "")]


def test_helpers() -> None:
    assert patterned("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij") and patterned("0123456789") and patterned("xxxxxxxx")
    assert not patterned("R8fKq2Zs7LmW4xTb9NcJ3vYh6PdQ1gUe5aXo")
    assert entropy("aaaa") == 0 and entropy("abcd") == 2
    assert package_path("/app/node_modules/@babel/core/lib/x.js") == ("lib", "x.js")
    assert package_path(f"{SITE}/a/node_modules/b/test/x.js") == ("test", "x.js")  # the innermost package
    assert package_path("/app/src/x.py") is None


def test_engines_record_the_same_verdicts() -> None:
    files = {
        f"{SITE}/botocore/data/ec2/examples-1.json": f'"token": "{GHP}"\n"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"\n',
        "/app/settings.py": f'TOKEN = "{GHP}"\npassword = "${{PW}}"\n',
        "/app/node_modules/x/README.md": "see https://user:pass@host/\n",
    }
    layer = build([Entry(p.lstrip("/"), data=t.encode()) for p, t in files.items()])
    options = ScanOptions(rules=tuple(RULES))
    results = [scan_layer(layer, options, engine=e).secrets for e in ENGINES]
    assert all(r == results[0] for r in results)
    assert {(h.path, h.line, h.allowed_by) for h in results[0] if h.rule == "github-pat"} == {
        (f"{SITE}/botocore/data/ec2/examples-1.json", 1, "package-examples"),
        ("/app/settings.py", 1, ""),
    }


# ---------------------------------------------------------------------------- through the pipeline

APP = {
    "app/settings.py": f'TOKEN = "{GHP}"\n'.encode(),
    "app/README.md": b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    "usr/lib/python3/dist-packages/paramiko/docs/keys.rst": b"-----BEGIN RSA PRIVATE KEY-----\n",
    "usr/lib/python3/dist-packages/kombu/README.rst": b"amqp://guest:guest@localhost//\n",
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("allow")
    return write_dir(oci_layout([Image([Layer([f(p, data) for p, data in APP.items()])])]), root / "layout")


def config(tmp_path: Path, text: str = "") -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(f"tmp_dir: {tmp_path}\nresult_cache_enable: false\n{text}")
    return load_config(str(path))


def test_pipeline_counts_what_it_suppresses(layout: Path, tmp_path: Path) -> None:
    a = analyze(f"oci-dir:{layout}", config(tmp_path), engine=ENGINE)
    assert [(s.rule, s.path) for s in a.secrets] == [("github-pat", "/app/settings.py")]
    assert a.secrets_suppressed == {"known-example": 2, "pem-without-body": 2, "url-placeholder": 1}
    assert set(a.secrets_suppressed) <= set(ALLOW_RULE_IDS)
    everything = analyze(f"oci-dir:{layout}", config(tmp_path, "secrets_all: true\n"), engine=ENGINE)
    assert len(everything.secrets) == 1 + sum(a.secrets_suppressed.values()) and everything.secrets_suppressed == {}
    table = io.StringIO()
    write_table(everything, table)
    examples = [line for line in table.getvalue().splitlines() if "calls it an example" in line]
    assert len(examples) == 5 and all(re.search(r"\(allow rule [a-z-]+ calls it an example\)$", e) for e in examples)


def test_cli_reports_the_counts_and_secrets_all(layout: Path, tmp_path: Path) -> None:
    def run(*extra: str) -> dict:
        out = tmp_path / "r.json"
        cmd = [sys.executable, "-m", "layerscan", "analyze", f"oci-dir:{layout}", "--no-result-cache", "-o", str(out)]
        done = subprocess.run([*cmd, "--json", "--tmp-dir", str(tmp_path), *extra], check=True, capture_output=True)
        report = json.loads(out.read_text())
        assert json.loads(done.stdout)["secrets_suppressed"] == report["stats"]["secrets_suppressed"]
        return report

    quiet, loud = run(), run("--secrets-all")
    assert quiet["stats"]["secrets"] == 1 and sum(quiet["stats"]["secrets_suppressed"].values()) == 5
    assert loud["stats"]["secrets"] == 6 and loud["stats"]["secrets_suppressed"] == {}
    # allowed_by is written only where --secrets-all kept a match an allow rule would suppress
    assert all("allowed_by" not in s for s in quiet["secrets"])
    assert Counter(s.get("allowed_by") for s in loud["secrets"]) == {None: 1, **quiet["stats"]["secrets_suppressed"]}


def test_anchore_config_keeps_anchore_semantics(layout: Path, tmp_path: Path) -> None:
    """Anchore's analyzer_config.yaml rules with builtin_rules: false: no allow rule touches them,
    so secret_search is what it was before allow rules existed (what secrets_all gives)."""
    specs = "".join(f"    - '{s}'\n" for s in ANCHORE_DEFAULT_SPECS)
    text = f"secret_search:\n  builtin_rules: false\n  regexp_match:\n{specs}"
    sections = []
    for extra in ("", "secrets_all: true\n"):
        a = analyze(f"oci-dir:{layout}", config(tmp_path, text + extra), engine=ENGINE)
        assert a.secrets_suppressed == {}
        out = tmp_path / "anchore.json"
        with out.open("w") as fh:
            write_anchore(a, fh)
        report = json.loads(out.read_text())[0]["image"]["imagedata"]["analysis_report"]
        sections.append(report["secret_search"])
    assert sections[0] == sections[1]
    paths = set(sections[0]["regexp_matches.all"]["base"])
    assert paths == {"/app/README.md", "/usr/lib/python3/dist-packages/paramiko/docs/keys.rst"}


def test_secrets_all_is_part_of_the_image_key_only(tmp_path: Path) -> None:
    on, off = config(tmp_path), config(tmp_path, "secrets_all: true\n")
    keys = []
    for c in (on, off):
        cache = ResultCache(None, scan_options(c, c.secret_rules), ENGINE, c)
        keys.append((cache.layer_key("sha256:0"), cache.image_key("sha256:1")))
    assert keys[0][0] == keys[1][0] and keys[0][1] != keys[1][1]


def test_every_builtin_rule_is_subject_to_allow_rules() -> None:
    assert {r.source for r in BUILTIN_RULES} == {"builtin"}
