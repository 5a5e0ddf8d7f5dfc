"""The result cache: values round trip, keys follow every option, a bad value is a miss, a warm
image reads no layer, and every report of a warm analysis is the cold one's, byte for byte."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzed import ENGINES, analysis
from conftest import IMAGE_NAMES, IMAGES, answers
from imagebuilder import Image, Layer, f, oci_layout, write_dir
from layerscan.analysis import Analysis
from layerscan.cli import main
from layerscan.config import Config, RetrieveFiles, load_config
from layerscan.errors import ConfigError, DigestMismatch, SourceError
from layerscan.pipeline import analyze, scan_options
from layerscan.report import FORMATS
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, Limits
from layerscan.scan.rules import Rule
from layerscan.sources import open_source
from layerscan.store.results import DIRNAME, ResultCache, codec, open_store
from layerscan.store.results.localstore import LocalStore
from registry_harness import Fault

# What differs between two runs by design: the SBOMs' creation time (seconds are set aside below).
CREATED = re.compile(r'"(timestamp|created)": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"')


def reports(a: Analysis) -> dict[str, str]:
    """Every report format of an analysis, its run time and the SBOMs' creation time set aside."""
    timeless = dataclasses.replace(a, seconds=0.0)
    out = {}
    for name, write in FORMATS.items():
        buf = io.StringIO()
        write(timeless, buf)
        out[name] = CREATED.sub(r'"\1": "<time>"', buf.getvalue())
    return out


def run(spec: str, config: Config, engine: str = ENGINES[0]) -> Analysis:
    return analyze(spec, config, engine=engine, progress=False)


def layout_copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(IMAGES / name, dest)
    return dest


def drop_layer_blobs(layout: Path, name: str) -> None:
    for layer in answers(name)["layers"]:
        (layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]).unlink()


def drop_image_entries(store: LocalStore) -> int:
    """Remove the image-level entries' values, leaving the per-layer ones (a miss for each removed)."""
    images = [e for e in store.entries() if e.kind == codec.IMAGE]
    for e in images:
        (store.values / e.key).unlink()
    return len(images)


def local_store(tmp: Path) -> LocalStore:
    store = open_store(Config(tmp_dir=str(tmp)))
    assert isinstance(store, LocalStore)
    return store


# ---------------------------------------------------------------------------- the codec


# The reference engine fills the same columns (the differential tests prove it), slowly: one small image.
@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "engine"), [(n, ENGINES[0]) for n in IMAGE_NAMES] + [("rpm-sqlite", e) for e in ENGINES[1:]]
)
def test_layer_results_round_trip(name: str, engine: str) -> None:
    config = Config()
    options = scan_options(config, (*config.secret_rules, *config.content_rules))
    source = open_source(f"oci-dir:{IMAGES / name}", config=config)
    try:
        for desc in source.layers:
            with source.open_layer(desc) as blob:
                assert blob is not None
                result = scan_layer(blob.data, options, engine=engine, name=desc.digest)
            data = codec.encode(codec.LAYER, desc.digest, result)
            assert codec.header(data) == (codec.LAYER, desc.digest)
            assert codec.decode(codec.LAYER, data) == result
    finally:
        source.close()


@pytest.mark.corpus
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_analysis_round_trips(name: str) -> None:
    a = analysis(name)
    back = codec.decode(codec.IMAGE, codec.encode(codec.IMAGE, a.manifest_digest, a))
    for field in dataclasses.fields(Analysis):
        assert getattr(back, field.name) == getattr(a, field.name), field.name
    assert [p.metadata for p in back.packages] == [p.metadata for p in a.packages]  # Package equality skips it
    assert [p.cpes for p in back.packages] == [p.cpes for p in a.packages] and all(p.cpes for p in back.packages)


@pytest.mark.corpus
def test_bad_values_are_codec_errors() -> None:
    a = analysis("rpm-sqlite")
    data = codec.encode(codec.IMAGE, a.manifest_digest, a)
    body = len(data) - 200
    bad = {
        "truncated": data[: len(data) // 2],
        "header only": data[:20],
        "empty": b"",
        "flipped byte": data[:body] + bytes([data[body] ^ 0x40]) + data[body + 1 :],
        "another format": data[:4] + (codec.FORMAT + 1).to_bytes(2, "little") + data[6:],
        "not ours": b"PK\x03\x04" + data[4:],
        "a layer entry read as an image": codec.encode(codec.LAYER, "sha256:x", run_layer_result()),
    }
    assert [what for what, value in bad.items() if not is_codec_error(value)] == []


def is_codec_error(value: bytes) -> bool:
    try:
        codec.decode(codec.IMAGE, value)
    except codec.CodecError:
        return True
    return False


def run_layer_result() -> LayerResult:
    """The LayerResult of the smallest corpus layer."""
    digest = answers("rpm-sqlite")["layers"][0]["digest"]
    blob = (IMAGES / "rpm-sqlite" / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    return scan_layer(blob, engine=ENGINES[0])


# ---------------------------------------------------------------------------- keys


def layer_key(config: Config, engine: str = "native", digest: str = "sha256:" + "ab" * 32) -> str:
    options = scan_options(config, (*config.secret_rules, *config.content_rules))
    return ResultCache(None, options, engine, config).layer_key(digest)


def image_key(config: Config) -> str:
    options = scan_options(config, (*config.secret_rules, *config.content_rules))
    return ResultCache(None, options, "native", config).image_key("sha256:" + "cd" * 32)


def test_every_option_that_changes_a_result_changes_the_key() -> None:
    base = Config()
    first = base.secret_rules[0]
    variants = {
        "a rule's pattern": dataclasses.replace(
            base, secret_rules=(dataclasses.replace(first, pattern=first.pattern + "x"), *base.secret_rules[1:])
        ),
        "one more rule": dataclasses.replace(base, content_rules=(Rule("todo", "TODO", kind="content"),)),
        "a rule less": dataclasses.replace(base, secret_rules=base.secret_rules[1:]),
        "an entry limit": dataclasses.replace(base, limits=Limits(max_entries=1000)),
        "a byte limit": dataclasses.replace(base, limits=Limits(max_total_bytes=1 << 30)),
        "the capture size": dataclasses.replace(base, capture_max_bytes=4 << 30),  # above what catalogers need
        "a capture glob": dataclasses.replace(base, retrieve_files=RetrieveFiles(file_list=("/etc/hosts",))),
        "the secret size limit": dataclasses.replace(base, secret_max_file_size=1000),
        "binary files": dataclasses.replace(base, secret_skip_binary=False),
    }
    keys = {"base": layer_key(base)}
    for what, config in variants.items():
        keys[what] = layer_key(config)
    keys["the engine"] = layer_key(base, engine="reference")
    keys["the layer"] = layer_key(base, digest="sha256:" + "ef" * 32)
    assert len(set(keys.values())) == len(keys), keys
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys.values())  # xxh3_128
    assert layer_key(Config()) == keys["base"]


def test_options_read_after_the_scan_change_the_image_key_only() -> None:
    base = Config()
    after = dataclasses.replace(base, enable_owned_package_filtering=False)
    assert layer_key(after) == layer_key(base)
    assert image_key(after) != image_key(base)
    assert image_key(dataclasses.replace(base, fetch_foreign_layers=False)) != image_key(base)


def test_keys_are_the_same_in_another_process() -> None:
    code = (
        "from layerscan.config import Config\n"
        "from layerscan.pipeline import scan_options\n"
        "from layerscan.store.results import ResultCache\n"
        "c = Config()\n"
        "o = scan_options(c, (*c.secret_rules, *c.content_rules))\n"
        f"print(ResultCache(None, o, 'native', c).layer_key('sha256:{'ab' * 32}'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == layer_key(Config())


# ---------------------------------------------------------------------------- end to end


@pytest.mark.corpus
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_reports_of_cold_layer_warm_and_image_warm_runs_are_identical(tmp_path: Path, name: str) -> None:
    layout = layout_copy(tmp_path, name)
    spec = f"oci-dir:{layout}"
    config = Config(tmp_dir=str(tmp_path / "tmp"))
    cold = reports(run(spec, dataclasses.replace(config, result_cache_enable=False)))
    assert not (tmp_path / "tmp" / DIRNAME).exists()

    assert reports(run(spec, config)) == cold  # cold, storing
    store = local_store(tmp_path / "tmp")
    stats = store.stats()
    assert (stats.layers, stats.images) == (len({la["digest"] for la in answers(name)["layers"]}), 1)

    drop_layer_blobs(layout, name)  # from now on, a layer that is opened fails the analysis
    assert drop_image_entries(store) == 1
    layer_warm = run(spec, config)
    assert reports(layer_warm) == cold
    image_warm = run(spec, config)
    assert reports(image_warm) == cold
    assert image_warm.source_name == spec
    with pytest.raises(SourceError, match="missing"):  # the blobs really are gone
        run(spec, dataclasses.replace(config, result_cache_enable=False))


def test_warnings_come_back_from_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A layer's warnings (a name outside the root) are part of its result: stored, returned and logged again."""
    image = Image([Layer([f("etc/os-release", b"ID=alpine\n"), f("../../etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])])
    spec = f"oci-dir:{write_dir(oci_layout([image]), tmp_path / 'layout')}"
    config = Config(tmp_dir=str(tmp_path / "tmp"))

    def warnings_and_log() -> tuple[list[str], list[str]]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="layerscan.pipeline"):
            a = run(spec, config)
        return a.warnings, [r.getMessage() for r in caplog.records if r.name == "layerscan.pipeline"]

    cold = warnings_and_log()
    assert len(cold[0]) == 1 and "escapes the root" in cold[0][0] and cold[1] == cold[0]
    drop_image_entries(local_store(tmp_path / "tmp"))
    assert warnings_and_log() == cold  # layer-warm
    assert warnings_and_log() == cold  # image-warm


@pytest.mark.corpus
def test_a_value_that_does_not_decode_is_a_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = f"oci-dir:{IMAGES / 'rpm-sqlite'}"
    config = Config(tmp_dir=str(tmp_path))
    expected = reports(run(spec, config))
    store = local_store(tmp_path)
    mutilations = {
        "truncated": lambda b: b[: len(b) // 3],
        "flipped": lambda b: b[:-100] + bytes([b[-100] ^ 1]) + b[-99:],
        "other format": lambda b: b[:4] + (codec.FORMAT + 7).to_bytes(2, "little") + b[6:],
        "emptied": lambda b: b"",
    }
    for what, mutilate in mutilations.items():
        for entry in store.entries():
            path = store.values / entry.key
            path.write_bytes(mutilate(path.read_bytes()))
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="layerscan.store.results"):
            assert reports(run(spec, config)) == expected, what
        unreadable = [r for r in caplog.records if "unreadable" in r.getMessage()]
        assert unreadable and all(r.levelno == logging.DEBUG for r in unreadable), what
        assert not [r for r in caplog.records if r.name.startswith("layerscan.store") and r.levelno >= logging.WARNING]
        for entry in store.entries():  # replaced by good values
            kind, _ = codec.header((store.values / entry.key).read_bytes())
            codec.decode(kind, (store.values / entry.key).read_bytes())


@pytest.mark.corpus
def test_a_changed_rule_or_limit_scans_the_layers_again(tmp_path: Path) -> None:
    spec = f"oci-dir:{IMAGES / 'debian-minbase'}"
    config = Config(tmp_dir=str(tmp_path))
    store = local_store(tmp_path)
    run(spec, config)
    run(spec, config)
    assert (store.stats().layers, store.stats().images) == (1, 1)
    marked = dataclasses.replace(config, content_rules=(Rule("debian", r"Debian", kind="content"),))
    found = run(spec, marked)
    assert (store.stats().layers, store.stats().images) == (2, 2)
    assert any(s.rule == "debian" for s in found.secrets)  # scanned with the new rule, not served the old result
    run(spec, dataclasses.replace(config, limits=Limits(max_path_bytes=2048)))
    assert (store.stats().layers, store.stats().images) == (3, 3)


def test_warm_registry_image_fetches_manifest_and_config_only(fault_proxy, tmp_path: Path) -> None:
    host = fault_proxy.host
    config = Config(tmp_dir=str(tmp_path), insecure_registries=(host,))
    apps = answers("debian-apps")
    layers = [la["digest"] for la in apps["layers"]]
    run(f"registry:{host}/corpus/debian-minbase:latest", config)  # its one layer is debian-apps' first
    fault_proxy.reset()
    run(f"registry:{host}/corpus/debian-apps:latest", config)
    assert fault_proxy.layer_gets(layers) == {d: 0 if i == 0 else 1 for i, d in enumerate(layers)}
    fault_proxy.reset()
    warm = run(f"registry:{host}/corpus/debian-apps:latest", config)
    assert warm.repo_tags == (f"{host}/corpus/debian-apps:latest",)
    gets = [path for method, path, _ in fault_proxy.requests if method == "GET"]
    blobs = {path.rsplit("/", 1)[1] for path in gets if "/blobs/" in path}
    assert blobs == {apps["config_digest"]}
    assert all(path == "/v2/" or "/manifests/" in path or "/blobs/" in path for path in gets), gets


def test_a_corrupt_layer_is_never_stored(fault_proxy, tmp_path: Path) -> None:
    host = fault_proxy.host
    layers = [la["digest"] for la in answers("debian-apps")["layers"]]
    fault_proxy.faults.append(Fault("corrupt", layers[1], at=123_456, times=-1))
    config = Config(tmp_dir=str(tmp_path), insecure_registries=(host,))
    with pytest.raises(DigestMismatch):
        run(f"registry:{host}/corpus/debian-apps:latest", config)
    entries = local_store(tmp_path).entries()
    assert layers[1] not in {e.subject for e in entries}
    assert all(e.kind == codec.LAYER for e in entries)


# ---------------------------------------------------------------------------- the command line and the config


@pytest.mark.corpus
def test_no_result_cache_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"oci-dir:{IMAGES / 'rpm-sqlite'}"
    out = str(tmp_path / "r.json")
    assert main(["analyze", source, "--tmp-dir", str(tmp_path), "-o", out, "--no-result-cache"]) == 0
    config = tmp_path / "config.yaml"
    config.write_text(f"tmp_dir: {tmp_path}\nresult_cache_enable: false\n")
    assert main(["analyze", source, "--config", str(config), "-o", out]) == 0
    assert not (tmp_path / DIRNAME).exists()
    assert main(["analyze", source, "--config", str(config), "-o", out, "--result-cache"]) == 0
    assert len(list((tmp_path / DIRNAME / "values").iterdir())) == 2  # its one layer, and the image


@pytest.mark.corpus
def test_cache_command_covers_the_result_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = answers("rpm-sqlite")
    report = str(tmp_path / "report.json")
    assert main(["analyze", f"oci-dir:{IMAGES / 'rpm-sqlite'}", "--tmp-dir", str(tmp_path), "-o", report]) == 0
    capsys.readouterr()

    def cache(*argv: str) -> dict:
        assert main(["cache", *argv, "--json", "--tmp-dir", str(tmp_path)]) == 0
        return json.loads(capsys.readouterr().out)

    listed = cache("ls")["results"]
    assert {(e["kind"], e["subject"]) for e in listed} == {
        ("image", key["manifest_digest"]),
        *(("layer", la["digest"]) for la in key["layers"]),
    }
    stats = cache("stats")
    assert stats["layers"]["entries"] == 0  # the layer cache is off by default
    assert (stats["results"]["layers"], stats["results"]["images"]) == (len(key["layers"]), 1)
    assert stats["results"]["bytes"] == sum(e["size"] for e in listed)
    assert cache("prune", "--only", "results")["results"]["freed_bytes"] == 0
    pruned = cache("prune", "--only", "results", "--max-gigabytes", str((listed[-1]["size"] + 1) / 1e9))
    assert pruned["results"]["entries"] == 1 and pruned["results"]["bytes"] == listed[-1]["size"]  # the newest stays
    assert cache("clear", "--only", "results") == {"results": {"removed": 1}}
    assert cache("ls") == {"layers": [], "results": []}
    assert main(["cache", "stats", "--tmp-dir", str(tmp_path)]) == 0
    assert "0 layer results, 0 image analyses" in capsys.readouterr().out


def test_config_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "result_cache_enable: false\nresult_cache_max_gigabytes: 0.5\n"
        "result_cache_url: redis://:hunter2@cache.internal:6379/3\nresult_cache_ttl_days: 7\n"
    )
    c = load_config(str(path))
    assert (c.result_cache_enable, c.result_cache_max_gigabytes, c.result_cache_ttl_days) == (False, 0.5, 7)
    assert c.result_cache_url == "redis://:hunter2@cache.internal:6379/3" and "hunter2" not in repr(c)
    assert Config().result_cache_enable is True and Config().result_cache_url is None
    for text, key in [
        ("result_cache_url: http://:hunter2@cache.internal/\n", "result_cache_url"),
        ("result_cache_max_gigabytes: 0\n", "result_cache_max_gigabytes"),
        ("result_cache_max_gigabytes: lots\n", "result_cache_max_gigabytes"),
        ("result_cache_ttl_days: -1\n", "result_cache_ttl_days"),
        ("result_cache_enable: maybe\n", "result_cache_enable"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=key) as e:
            load_config(str(path))
        assert "hunter2" not in str(e.value)


# ---------------------------------------------------------------------------- the local store


def test_local_store_evicts_least_recently_used_within_its_bound(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, 1000)
    for k in "abc":
        store.put(k * 32, k.encode() * 300, codec.LAYER, f"sha256:{k}")
    assert store.get("a" * 32) == b"a" * 300  # a is now the most recently used
    store.put("d" * 32, b"d" * 300, codec.LAYER, "sha256:d")
    assert [e.key[0] for e in store.entries()] == ["c", "a", "d"]
    assert store.get("b" * 32) is None and store.stats().bytes == 900
    store.put("e" * 32, b"e" * 1001, codec.LAYER, "sha256:e")  # larger than the whole cache: not stored
    assert store.get("e" * 32) is None and store.stats().bytes == 900
    assert sorted(p.name for p in store.values.iterdir()) == sorted(e.key for e in store.entries())


@pytest.mark.corpus
def test_local_store_rebuilds_a_lost_index(tmp_path: Path) -> None:
    root = tmp_path / DIRNAME
    a = analysis("rpm-sqlite")
    store = LocalStore(root, 10**9)
    store.put("1" * 32, codec.encode(codec.IMAGE, a.manifest_digest, a), codec.IMAGE, a.manifest_digest)
    store.close()
    (root / "values" / ("2" * 32)).write_bytes(b"not a value")
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    store = LocalStore(root, 10**9)
    assert [(e.key, e.kind, e.subject) for e in store.entries()] == [("1" * 32, codec.IMAGE, a.manifest_digest)]
    assert not (root / "values" / ("2" * 32)).exists()
