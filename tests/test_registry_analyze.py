"""`layerscan analyze registry:…` end to end: the real CLI in a subprocess against a real docker-registry
(anonymous, htpasswd, token, TLS, and the fault proxy), compared with the same image's OCI layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IMAGES, ROOT, answers
from layerscan.errors import DigestMismatch, SourceError
from layerscan.sources import open_source
from layerscan.sources.auth import AuthError
from layerscan.sources.registry import RegistryError, RegistrySource
from layerscan.sources.resolve import ResolvedImage
from registry_fixtures import PASSWORD, USER
from registry_harness import Fault

IMAGE = "debian-apps"
REPO = f"corpus/{IMAGE}:latest"


def layers() -> list[str]:
    return [la["digest"] for la in answers(IMAGE)["layers"]]


# Where the image's identity differs by source; everything else in the report must not.
SOURCE_KEYS = ("source", "repo_tags", "repo_digests")


def analyze_cli(
    tmp_path: Path, source: str, *options: str, stdin: str = "", debug: bool = False
) -> tuple[subprocess.CompletedProcess, Path]:
    """`python -m layerscan [--debug] analyze SOURCE --format json -o FILE OPTIONS…` with no ambient credentials."""
    out = tmp_path / "report.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LAYERSCAN_REGISTRY_")
        and k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR")
    }
    env["HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerscan",
            *(["--debug"] if debug else []),
            "analyze",
            source,
            "--format",
            "json",
            "-o",
            str(out),
            *options,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=240,
    )
    return proc, out


def analyze_as_user(
    tmp_path: Path, source: str, host: str, stdin: str, debug: bool = False
) -> tuple[subprocess.CompletedProcess, Path]:
    """analyze_cli as USER of the plain-HTTP registry `host`, the password given on stdin."""
    return analyze_cli(
        tmp_path, source, "--insecure-registry", host, "--username", USER, "--password-stdin", stdin=stdin, debug=debug
    )


def ok_report(proc: subprocess.CompletedProcess, out: Path) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def layout_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("layout")
    return ok_report(*analyze_cli(tmp, f"oci-dir:{IMAGES / IMAGE}"))


def assert_same_image(report: dict, layout: dict, host: str) -> None:
    assert report["files"] == layout["files"]
    assert report["packages"] == layout["packages"]
    assert report["secrets"] == layout["secrets"] and report["distro"] == layout["distro"]
    image, expected = report["image"], layout["image"]
    assert image["manifest_digest"] == expected["manifest_digest"] == answers(IMAGE)["manifest_digest"]
    assert {k: v for k, v in image.items() if k not in SOURCE_KEYS} == {
        k: v for k, v in expected.items() if k not in SOURCE_KEYS
    }
    assert image["repo_tags"] == [f"{host}/{REPO}"]
    assert image["repo_digests"] == [f"{host}/corpus/{IMAGE}@{expected['manifest_digest']}"]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error line; anything else on stderr is a log line (no traceback)."""
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("layerscan: error: ")]
    assert len(errors) == 1 and all(line.startswith("layerscan: ") for line in lines), proc.stderr
    return errors[0]


def tmp_dir(tmp_path: Path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


def cache_files(tmp: Path) -> set[str]:
    return {p.name for p in (tmp / "anchore_layercache" / "sha256").iterdir()}


# ---------------------------------------------------------------------------- each kind of registry


@pytest.mark.corpus
def test_anonymous(registry, layout_report, tmp_path):
    host = registry.host
    proc, out = analyze_cli(tmp_path, f"registry:{host}/{REPO}", "--insecure-registry", host, "--no-cache")
    assert_same_image(ok_report(proc, out), layout_report, host)


@pytest.mark.corpus
def test_basic_auth_with_password_stdin(basic_registry, layout_report, tmp_path):
    host = basic_registry.host
    proc, out = analyze_as_user(tmp_path, f"docker://{host}/{REPO}", host, PASSWORD + "\n")
    assert_same_image(ok_report(proc, out), layout_report, host)
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.corpus
def test_token_auth(token_registry, token_server, layout_report, tmp_path):
    host = token_registry.host
    token_server.issued.clear()
    proc, out = analyze_as_user(tmp_path, f"registry:{host}/{REPO}", host, PASSWORD + "\r\n")
    assert_same_image(ok_report(proc, out), layout_report, host)
    assert (USER, "repository:corpus/debian-apps:pull") in token_server.issued
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.corpus
def test_tls_with_ca_cert(tls_registry, tls_certs, layout_report, tmp_path):
    host = tls_registry.host
    proc, out = analyze_cli(tmp_path, f"registry:{host}/{REPO}")
    assert proc.returncode == SourceError.exit_code and not out.exists()
    assert "TLS verification failed" in one_line_error(proc)
    proc, out = analyze_cli(tmp_path, f"registry:{host}/{REPO}", "--ca-cert", str(tls_certs.ca_cert))
    assert_same_image(ok_report(proc, out), layout_report, host)


# ---------------------------------------------------------------------------- the layer cache, through the fault proxy


@pytest.mark.corpus
def test_warm_cache_downloads_no_layer(fault_proxy, layout_report, tmp_path):
    host, tmp = fault_proxy.host, tmp_dir(tmp_path)
    options = ("--insecure-registry", host, "--cache", "--tmp-dir", str(tmp), "--no-result-cache")
    for gets in (1, 0):
        fault_proxy.blob_gets.clear()
        proc, out = analyze_cli(tmp_path, f"registry:{host}/{REPO}", *options)
        assert_same_image(ok_report(proc, out), layout_report, host)
        assert fault_proxy.layer_gets(layers()) == {d: gets for d in layers()}
    assert {d.split(":")[1] for d in layers()} <= cache_files(tmp)


@pytest.mark.corpus
def test_cache_off_writes_nothing_under_tmp_dir(fault_proxy, layout_report, tmp_path):
    host, tmp = fault_proxy.host, tmp_dir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"tmp_dir: {tmp}\nanalyzer:\n  layer_cache_enable: true\n")  # --no-cache wins
    proc, out = analyze_cli(
        tmp_path,
        f"registry:{host}/{REPO}",
        "--insecure-registry",
        host,
        "--config",
        str(config),
        "--no-cache",
        "--no-result-cache",
    )
    assert_same_image(ok_report(proc, out), layout_report, host)
    assert list(tmp.rglob("*")) == []
    assert fault_proxy.layer_gets(layers()) == {d: 1 for d in layers()}


# ---------------------------------------------------------------------------- bad input


def test_wrong_password_is_one_line_and_never_shown(basic_registry, tmp_path):
    host, wrong = basic_registry.host, "Wr0ng-pass-7f3a"
    for debug in (True, False):  # not even in the debug log
        proc, out = analyze_as_user(tmp_path, f"registry:{host}/{REPO}", host, wrong + "\n", debug=debug)
        assert proc.returncode == AuthError.exit_code and not out.exists()
        assert wrong not in proc.stdout + proc.stderr
    assert f"registry {host} refused" in one_line_error(proc)


@pytest.mark.corpus
@pytest.mark.parametrize("layer", [1, 3], ids=["gzip", "uncompressed"])
@pytest.mark.parametrize("cache", ["--cache", "--no-cache"])
def test_corrupt_byte_is_a_digest_error_and_nothing_is_cached(fault_proxy, tmp_path, cache, layer):
    host, tmp, digest = fault_proxy.host, tmp_dir(tmp_path), layers()[layer]
    fault_proxy.faults.append(Fault("corrupt", digest, at=123_456, times=-1))
    proc, out = analyze_cli(
        tmp_path,
        f"registry:{host}/{REPO}",
        "--insecure-registry",
        host,
        cache,
        "--tmp-dir",
        str(tmp),
        "--no-result-cache",
    )
    assert proc.returncode == DigestMismatch.exit_code == 5, proc.stderr
    assert f"expected {digest}" in one_line_error(proc) and not out.exists()
    if cache == "--cache":
        assert not any(name.startswith(".tmp-") or name == digest.split(":")[1] for name in cache_files(tmp))
    else:
        assert list(tmp.rglob("*")) == []


@pytest.mark.corpus
@pytest.mark.parametrize(
    "options, message",
    [
        (("--username", USER), "--username and --password-stdin go together"),
        (("--password-stdin",), "--username and --password-stdin go together"),
        (("--ca-cert", __file__), "apply to registry:REF or docker://REF sources only"),
    ],
)
def test_registry_options_misused(tmp_path, options, message):
    source = f"registry:127.0.0.1:9/{REPO}" if "--ca-cert" not in options else f"oci-dir:{IMAGES / IMAGE}"
    proc, out = analyze_cli(tmp_path, source, *options, stdin="x\n")
    assert proc.returncode == 2 and message in one_line_error(proc) and not out.exists()


def test_option_values_are_checked(tmp_path):
    for options in (
        ("--insecure-registry", "http://localhost:5000"),
        ("--ca-cert", str(tmp_path / "none.pem")),
        ("--tmp-dir", str(tmp_path / "none")),
    ):
        proc, _ = analyze_cli(tmp_path, f"registry:127.0.0.1:9/{REPO}", *options)
        assert proc.returncode == 2 and options[0] in proc.stderr


# ---------------------------------------------------------------------------- the source itself


@pytest.mark.corpus
def test_registry_source_is_a_context_manager_and_its_errors_are_source_errors(registry, tmp_path):
    from layerscan.config import Config

    config = Config(tmp_dir=str(tmp_path), insecure_registries=(registry.host,))
    with open_source(f"registry:{registry.host}/{REPO}", config=config) as src:
        assert isinstance(src, ResolvedImage) and isinstance(src.source, RegistrySource)
        assert src.manifest_digest == answers(IMAGE)["manifest_digest"]
        pools = [a.poolmanager.pools for a in src.source.client.session.adapters.values()]
        assert sum(len(p) for p in pools) > 0  # connections to the registry
    assert sum(len(p) for p in pools) == 0  # closed on leaving the block
    assert issubclass(RegistryError, SourceError) and issubclass(AuthError, SourceError)
    with pytest.raises(SourceError) as e:
        open_source(f"registry:{registry.host}/corpus/nope:latest", config=config)
    assert e.value.exit_code == SourceError.exit_code


def test_options_merge_into_the_config_file_settings(tmp_path):
    from layerscan.cli import build_parser
    from layerscan.cli.analyze import with_options
    from layerscan.config import Config, Registry

    host = "reg.example:5000"
    config = Config(
        insecure_registries=("a.example",),
        layer_cache_enable=True,
        registries={
            host: Registry(insecure=True, username="from-file", password="file-pw"),
            "other.example": Registry(username="o", password="p"),
        },
    )
    args = build_parser().parse_args(
        [
            "analyze",
            f"docker://{host}/ns/app:1",
            "--username",
            "cli-user",
            "--password-stdin",
            "--ca-cert",
            __file__,
            "--insecure-registry",
            "a.example",
            "--insecure-registry",
            "b.example:8443",
            "--no-cache",
            "--tmp-dir",
            str(tmp_path),
        ]
    )
    merged = with_options(config, args, lambda: "cli-pw")
    assert merged.registries == {
        host: Registry(insecure=True, ca_cert=__file__, username="cli-user", password="cli-pw"),
        "other.example": Registry(username="o", password="p"),
    }
    assert merged.insecure_registries == ("a.example", "b.example:8443")
    assert merged.layer_cache_enable is False and merged.tmp_dir == str(tmp_path)
    assert config.registries[host].username == "from-file"  # the loaded Config is not changed
    plain = build_parser().parse_args(["analyze", f"registry:{host}/ns/app:1"])
    assert with_options(config, plain, None) is config
