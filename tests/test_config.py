"""config.yaml: every key, ${VAR} substitution, warnings for unknown keys, errors naming bad ones."""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from pathlib import Path

import pytest

from layerscan.config import Config, Registry, RetrieveFiles, load_config, substitute_env
from layerscan.errors import ConfigError
from layerscan.scan.model import Limits
from layerscan.scan.rules import ANCHORE_DEFAULT_SPECS, BUILTIN_RULES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def ids(rules) -> list[str]:
    return [r.id for r in rules]


def test_no_file_is_all_defaults() -> None:
    assert load_config(None) == Config()


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


@pytest.mark.parametrize("section", ["services:\n  analyzer:", "analyzer:"])
def test_every_analyzer_key(tmp_path: Path, section: str, caplog: pytest.LogCaptureFixture) -> None:
    body = """
        enabled: false
        require_auth: false
        cycle_timer_seconds: 5
        max_threads: 7
        analyzer_driver: nodocker
        endpoint_hostname: analyzer.internal
        listen: 127.0.0.1
        port: 9090
        enable_hints: true
        layer_cache_enable: true
        layer_cache_max_gigabytes: 12
        keep_image_analysis_tmpfiles: true
        enable_owned_package_filtering: false
        external_port: 443
        max_request_threads: 50
    """
    indent = "    " if section.startswith("services") else "  "
    text = f"tmp_dir: /scratch\n{section}\n" + textwrap.indent(textwrap.dedent(body), indent)
    with caplog.at_level(logging.WARNING):
        c = load_config(write(tmp_path, text))
    # Anchore keys layerscan does not use are accepted quietly; hints it cannot honour are worth saying.
    assert [r.getMessage() for r in caplog.records] == [
        f"config {'services.' if section.startswith('services') else ''}analyzer.enable_hints: "
        "layerscan does not read an image's anchore_hints.json; ignored"
    ]
    assert (c.tmp_dir, c.require_auth, c.cycle_timer_seconds, c.max_threads, c.listen, c.port) == (
        "/scratch",
        False,
        5,
        7,
        "127.0.0.1",
        9090,
    )
    assert (c.layer_cache_enable, c.layer_cache_max_gigabytes, c.enable_owned_package_filtering) == (True, 12, False)


def test_anchore_default_config_loads_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shape of Anchore's conf/default_config.yaml (anchore-format.md §4.2).
    monkeypatch.setenv("ANCHORE_HINTS_ENABLED", "false")
    monkeypatch.setenv("ANCHORE_ENABLE_PACKAGE_FILTERING", "true")
    path = write(
        tmp_path,
        """
        service_dir: /anchore_service
        tmp_dir: /analysis_scratch
        log_level: INFO
        host_id: 'anchore-quickstart'
        internal_ssl_verify: False
        allow_awsecr_iam_auto: True
        skopeo_global_timeout: 0
        max_compressed_image_size_mb: -1
        image_analyze_timeout_seconds: '36000'
        cleanup_images: False
        default_admin_password: foobar
        credentials:
          database:
            db_connect: 'postgresql://${ANCHORE_DB_USER}@${ANCHORE_DB_HOST}/anchore'
        services:
          apiext: {enabled: true, require_auth: true, endpoint_hostname: api, listen: '0.0.0.0', port: 8228}
          analyzer:
            enabled: true
            require_auth: true
            cycle_timer_seconds: 1
            max_threads: 1
            analyzer_driver: 'nodocker'
            endpoint_hostname: '${ANCHORE_ENDPOINT_HOSTNAME}'
            listen: '0.0.0.0'
            port: 8084
            enable_hints: ${ANCHORE_HINTS_ENABLED}
            enable_owned_package_filtering: ${ANCHORE_ENABLE_PACKAGE_FILTERING}
    """,
    )
    with caplog.at_level(logging.WARNING):
        c = load_config(path)
    # The unset ${ANCHORE_ENDPOINT_HOSTNAME} is in a key layerscan ignores: nothing to warn about.
    assert caplog.text == ""
    assert c.tmp_dir == "/analysis_scratch" and c.max_threads == 1 and c.port == 8084
    assert c.enable_owned_package_filtering is True


def test_env_substitution_as_anchore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("ANCHORE_MAX_THREADS='3'\nANCHORE_TMP=/from/file\nNOT_A_PAIR\n")
    monkeypatch.setenv("ANCHORE_ENV_FILE", str(env_file))
    monkeypatch.setenv("ANCHORE_TMP", "/from/env")  # the environment wins over the file
    monkeypatch.setenv("LAYERSCAN_CACHE", "true")
    monkeypatch.setenv("HOME_LIKE", "/nope")
    c = load_config(
        write(
            tmp_path,
            """
        tmp_dir: ${ANCHORE_TMP}/x
        analyzer:
          max_threads: ${ANCHORE_MAX_THREADS}
          layer_cache_enable: ${LAYERSCAN_CACHE}
    """,
        )
    )
    assert (c.tmp_dir, c.max_threads, c.layer_cache_enable) == ("/from/env/x", 3, True)
    # Only ANCHORE_* (Anchore's rule) and LAYERSCAN_* names are replaced.
    assert substitute_env("${HOME_LIKE} ${ANCHORE_TMP}", {"HOME_LIKE": "x", "ANCHORE_TMP": "y"}) == "${HOME_LIKE} y"


def test_unset_variable_keeps_the_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = load_config(write(tmp_path, "analyzer:\n  max_threads: ${ANCHORE_SURELY_UNSET_VAR}\n"))
    assert c.max_threads == Config().max_threads
    assert "analyzer.max_threads" in caplog.text and "ANCHORE_SURELY_UNSET_VAR" in caplog.text


def test_unknown_keys_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = load_config(
            write(
                tmp_path,
                """
            tmp_dri: /typo
            analyzer:
              max_thread: 3
            limits:
              max_entires: 5
            secret_search:
              regexp_macth: []
        """,
            )
        )
    for key in ("tmp_dri", "analyzer.max_thread", "limits.max_entires", "secret_search.regexp_macth"):
        assert f"config {key}: unknown key" in caplog.text
    assert c.max_threads == Config().max_threads


@pytest.mark.parametrize(
    "text, key",
    [
        ("analyzer:\n  max_threads: lots\n", "analyzer.max_threads"),
        ("analyzer:\n  max_threads: -1\n", "analyzer.max_threads"),  # 0 is allowed: no analyses (issue 9)
        ("analyzer:\n  layer_cache_enable: maybe\n", "analyzer.layer_cache_enable"),
        ("analyzer:\n  layer_cache_max_gigabytes: -2\n", "analyzer.layer_cache_max_gigabytes"),
        ("analyzer:\n  layer_cache_max_gigabytes: 1.5\n", "analyzer.layer_cache_max_gigabytes"),
        ("services:\n  analyzer:\n    port: 70000\n", "services.analyzer.port"),
        ("analyzer: 3\n", "analyzer"),
        ("limits:\n  max_entries: -1\n", "limits.max_entries"),
        ("retrieve_files:\n  file_list: [etc/passwd]\n", "retrieve_files.file_list[0]"),
        ("retrieve_files:\n  max_file_size_kb: big\n", "retrieve_files.max_file_size_kb"),
        ("secret_search:\n  regexp_match: ['NO_EQUALS_SIGN']\n", "secret_search.regexp_match[0]"),
        ("secret_search:\n  regexp_match: ['BAD=(unclosed']\n", "secret_search.regexp_match[0]"),
        ("secret_search:\n  match_params: [MAXFILESIZE=ten]\n", "secret_search.match_params 'MAXFILESIZE=ten'"),
        ("secret_rules:\n  - {id: x, regex: '[a-'}\n", "secret_rules[0].regex"),
        ("secret_rules:\n  - {regex: 'abc'}\n", "secret_rules[0].id"),
        ("secret_rules:\n  - {id: x, regex: a, kind: other}\n", "secret_rules[0].kind"),
        ("secret_rules:\n  - {id: aws-access-key-id, regex: a}\n", "secret rules"),
        ("ca_cert: /no/such/ca.pem\n", "ca_cert"),
        ("insecure_registries: localhost:5000\n", "insecure_registries"),
        ("fetch_foreign_layers: maybe\n", "fetch_foreign_layers"),
        ("registries:\n  r.example:\n    password: x\n", "registries.r.example.password"),
        ("registries:\n  r.example:\n    insecure: sometimes\n", "registries.r.example.insecure"),
        ("platform: linux\n", "platform"),
        ("analyzer: {max_threads: 2}\nservices: {analyzer: {max_threads: 3}}\n", "analyzer section is given twice"),
        ("[1, 2]\n", "top level must be a mapping"),
        ("analyzer: {max_threads: 2\n", "not valid YAML"),
    ],
)
def test_invalid_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert key in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(str(tmp_path / "nope.yaml"))


def test_layerscan_keys(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "pw").write_text("s3cr3t-from-file\n")
    c = load_config(
        write(
            tmp_path,
            """
        secret_max_file_size: 2048
        secret_skip_binary: false
        capture_max_bytes: 1000
        limits: {max_total_bytes: 100, max_entries: 10, max_path_bytes: 200, max_ext_header_bytes: 300}
        ca_cert: ca.pem
        insecure_registries: [localhost:5000]
        fetch_foreign_layers: false
        platform: linux/arm64/v8
        registries:
          ghcr.io: {username: bot, password: 12345678}
          quay.io: {username: bot2, password_file: pw, ca_cert: ca.pem}
          localhost:5000: {insecure: true}
    """,
        )
    )
    assert (c.secret_max_file_size, c.secret_skip_binary, c.capture_max_bytes) == (2048, False, 1000)
    assert c.limits == Limits(100, 10, 200, 300)
    assert c.ca_cert == str(ca) and c.insecure_registries == ("localhost:5000",)
    assert c.fetch_foreign_layers is False and Config().fetch_foreign_layers is True  # Anchore fetches them
    assert c.platform == "linux/arm64/v8"
    assert c.registries == {
        "ghcr.io": Registry(username="bot", password="12345678"),
        "quay.io": Registry(username="bot2", password="s3cr3t-from-file", ca_cert=str(ca)),
        "localhost:5000": Registry(insecure=True),
    }
    assert "s3cr3t" not in repr(c) and "12345678" not in repr(c)


def test_retrieve_files_and_match_params(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = load_config(
            write(
                tmp_path,
                """
            retrieve_files: {max_file_size_kb: 5, file_list: [/etc/group, /etc/shadow]}
            secret_search:
              match_params: [MAXFILESIZE=4000, STOREONMATCH=y, COLOR=blue]
            content_search:
              match_params: [MAXFILESIZE=9000]
              regexp_match: ['NOPASS=.*NOPASSWD.*']
        """,
            )
        )
    assert c.retrieve_files == RetrieveFiles(("/etc/group", "/etc/shadow"), 5)
    assert c.secret_max_file_size == 9000  # one limit for both: the larger
    assert "STOREONMATCH" in caplog.text and "COLOR=blue" in caplog.text and "uses the larger" in caplog.text
    assert ids(c.content_rules) == ["NOPASS"] and c.content_rules[0].kind == "content"
    assert c.content_rules[0].anchored  # Anchore's rules are re.match'ed


def test_rule_combination(tmp_path: Path) -> None:
    builtin = ids(BUILTIN_RULES)
    anchore = [s.split("=", 1)[0] for s in ANCHORE_DEFAULT_SPECS]
    # No secret_search: ours and Anchore's five.
    assert ids(load_config(write(tmp_path, "tmp_dir: /t\n")).secret_rules) == builtin + anchore
    # Configured regexp_match replaces Anchore's five, as in Anchore; ours stay.
    c = load_config(write(tmp_path, "secret_search:\n  regexp_match: ['MINE=.*mine.*']\n"))
    assert ids(c.secret_rules) == builtin + ["MINE"]
    assert c.secret_rules[-1].source == "anchore" and c.secret_rules[-1].matches(b"this is mine")
    # builtin_rules: false gives exactly Anchore's behaviour.
    c = load_config(write(tmp_path, "secret_search:\n  builtin_rules: false\n"))
    assert ids(c.secret_rules) == anchore
    c = load_config(write(tmp_path, "secret_search:\n  builtin_rules: false\n  regexp_match: []\n"))
    assert c.secret_rules == ()
    # secret_rules adds ours, of either kind.
    c = load_config(
        write(
            tmp_path,
            """
        secret_search: {builtin_rules: false, regexp_match: []}
        secret_rules:
          - {id: tok, regex: 'tok_[0-9]{4}'}
          - {id: note, regex: 'TODO', kind: content, anchored: true}
    """,
        )
    )
    assert ids(c.secret_rules) == ["tok"] and ids(c.content_rules) == ["note"]
    assert c.secret_rules[0].source == "config" and not c.secret_rules[0].anchored
    assert (
        c.content_rules[0].anchored
        and c.content_rules[0].matches(b"TODO x")
        and not c.content_rules[0].matches(b"x TODO")
    )


def test_analyzer_config_file_and_inline_override(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        retrieve_files: {file_list: [/etc/hosts]}
        secret_search: {regexp_match: ['FROMFILE=x']}
        bogus_section: {}
    """,
        "analyzer_config.yaml",
    )
    c = load_config(write(tmp_path, "analyzer_config: analyzer_config.yaml\n"))
    assert c.retrieve_files.file_list == ("/etc/hosts",) and ids(c.secret_rules)[-1] == "FROMFILE"
    c = load_config(
        write(
            tmp_path,
            """
        analyzer_config: analyzer_config.yaml
        secret_search: {regexp_match: ['INLINE=y']}
    """,
        )
    )
    assert ids(c.secret_rules)[-1] == "INLINE" and c.retrieve_files.file_list == ("/etc/hosts",)


def test_service_dir_analyzer_config_is_read(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    write(service, "retrieve_files: {file_list: [/etc/os-release]}\n", "analyzer_config.yaml")
    c = load_config(write(tmp_path, "service_dir: service\n"))
    assert c.retrieve_files.file_list == ("/etc/os-release",)


def test_examples_load(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERSCAN_REGISTRY_PASSWORD", "example-password")
    monkeypatch.setenv("ANCHORE_ENABLE_PACKAGE_FILTERING", "true")
    with caplog.at_level(logging.WARNING):
        c = load_config(str(EXAMPLES / "config.yaml"))
    assert caplog.text == ""
    assert c.layer_cache_enable and c.layer_cache_max_gigabytes == 4 and c.max_threads == 4
    assert c.registries["registry.example.com"].password == "example-password"
    assert c.registries["localhost:5000"].insecure
    assert c.fetch_foreign_layers
    assert ids(c.secret_rules) == ids(BUILTIN_RULES) + [s.split("=", 1)[0] for s in ANCHORE_DEFAULT_SPECS] + [
        "internal-api-token"
    ]
    assert ids(c.content_rules) == ["SUDO_NOPASSWD", "todo-password"]
    assert c.secret_max_file_size == 10_000_000  # the explicit key wins over MAXFILESIZE
    # The analyzer_config.yaml example on its own, inlined into a config.
    alone = load_config(str(EXAMPLES / "analyzer_config.yaml"))
    assert alone.secret_max_file_size == 10000 and alone.retrieve_files == RetrieveFiles()
    assert [r.pattern for r in alone.secret_rules if r.source == "anchore"] == [
        s.split("=", 1)[1] for s in ANCHORE_DEFAULT_SPECS
    ]


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config(None).max_threads = 2  # type: ignore[misc]
