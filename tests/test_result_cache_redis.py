"""The result cache in a real Redis (Debian's redis-server, started here with a password):
the bound and LRU order, TTLs, values shared between hosts, bad values are misses, an
unreachable Redis costs a warning and never the analysis, and the password is never shown."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IMAGES, answers
from layerscan.cli import main
from layerscan.config import Config
from layerscan.store.results import DIRNAME, codec
from layerscan.store.results.redisstore import PREFIX, RedisStore
from redis_harness import RedisServer
from registry_harness import free_port
from test_result_cache import drop_layer_blobs, layout_copy, reports, run

PASSWORD = "rc-pass-3f9a"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path_factory.mktemp("redis"), password=PASSWORD)
    yield s
    s.stop()


@pytest.fixture
def redis_url(server: RedisServer) -> str:
    server.client().flushall()
    return server.url


def test_bound_lru_and_ttl(redis_url: str, server: RedisServer) -> None:
    store = RedisStore(redis_url, 1000, ttl_seconds=3600)
    for k in "abc":
        store.put(k * 32, k.encode() * 300, codec.LAYER, f"sha256:{k}")
        time.sleep(0.002)  # distinct access times, so that the LRU order is the order of the calls
    assert store.get("a" * 32) == b"a" * 300  # now the most recently used
    time.sleep(0.002)
    store.put("d" * 32, b"d" * 300, codec.LAYER, "sha256:d")
    assert [(e.key[0], e.subject, e.size) for e in store.entries()] == [
        ("c", "sha256:c", 300),
        ("a", "sha256:a", 300),
        ("d", "sha256:d", 300),
    ]
    assert store.get("b" * 32) is None and store.stats().bytes == 900
    store.put("a" * 32, b"A" * 500, codec.IMAGE, "sha256:a")  # replaced: counted once, c makes room
    assert {e.key[0] for e in store.entries()} == {"d", "a"} and store.stats().bytes == 800
    store.put("e" * 32, b"e" * 1001, codec.LAYER, "sha256:e")  # larger than the whole cache
    assert store.get("e" * 32) is None
    ttl = server.client().ttl(f"{PREFIX}v:{'d' * 32}")
    assert 3500 < ttl <= 3600
    stats = store.stats()
    assert (stats.layers, stats.images, stats.max_bytes) == (1, 1, 1000)


def test_expired_values_are_counted_until_pruned(redis_url: str, server: RedisServer) -> None:
    store = RedisStore(redis_url, 10_000, ttl_seconds=3600)
    store.put("a" * 32, b"x" * 100, codec.LAYER, "sha256:a")
    store.put("b" * 32, b"y" * 200, codec.LAYER, "sha256:b")
    server.client().pexpire(f"{PREFIX}v:{'a' * 32}", 1)
    time.sleep(0.05)
    assert store.get("a" * 32) is None
    assert store.stats().bytes == 300  # still counted: the bound errs on the safe side
    assert store.prune() == 0
    assert [e.key for e in store.entries()] == ["b" * 32] and store.stats().bytes == 200
    assert store.prune(max_bytes=0) == 200 and store.entries() == []


@pytest.mark.corpus
def test_hosts_share_results_through_redis(redis_url: str, tmp_path: Path) -> None:
    layout = layout_copy(tmp_path, "debian-apps")
    spec = f"oci-dir:{layout}"
    host_a = Config(tmp_dir=str(tmp_path / "a"), result_cache_url=redis_url)
    host_b = dataclasses.replace(host_a, tmp_dir=str(tmp_path / "b"))
    cold = reports(run(spec, dataclasses.replace(host_a, result_cache_enable=False)))
    assert reports(run(spec, host_a)) == cold
    stats = RedisStore(redis_url, 1, 1).stats()
    assert (stats.layers, stats.images) == (len(answers("debian-apps")["layers"]), 1)
    assert not (tmp_path / "a" / DIRNAME).exists()  # nothing local when Redis is the store
    drop_layer_blobs(layout, "debian-apps")
    assert reports(run(spec, host_b)) == cold  # another host: no layer read


@pytest.mark.corpus
def test_bad_values_in_redis_are_misses(
    redis_url: str, server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = f"oci-dir:{IMAGES / 'rpm-sqlite'}"
    config = Config(tmp_dir=str(tmp_path), result_cache_url=redis_url)
    expected = reports(run(spec, config))
    client = server.client()
    names = list(client.scan_iter(match=f"{PREFIX}v:*"))
    assert len(names) == 2
    for mutilate in (lambda b: b[: len(b) // 2], lambda b: b[:-50] + bytes([b[-50] ^ 1]) + b[-49:], lambda b: b"?"):
        for name in names:
            client.set(name, mutilate(client.get(name)), keepttl=True)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="layerscan.store.results"):
            assert reports(run(spec, config)) == expected
        # each bad value reported (a layer's is read twice: before and after taking its scan lock)
        assert len({r.args[1] for r in caplog.records if "unreadable" in r.getMessage()}) == 2  # type: ignore[index]
        for name in names:  # stored again, whole
            value = client.get(name)
            codec.decode(codec.header(value)[0], value)


@pytest.mark.corpus
def test_an_unreachable_redis_costs_a_warning_not_the_analysis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = f"oci-dir:{IMAGES / 'debian-apps'}"
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.DEBUG):
        a = run(spec, Config(tmp_dir=str(tmp_path), result_cache_url=url))
    assert len(a.files) > 0
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("layerscan.store")]
    assert len(warnings) == 1 and "analyzing without it" in warnings[0], warnings
    assert PASSWORD not in caplog.text and ":***@127.0.0.1" in warnings[0]


def test_the_cache_command_over_redis_never_shows_the_password(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    RedisStore(redis_url, 10_000, 60).put("f" * 32, b"v" * 10, codec.IMAGE, "sha256:f")
    config = tmp_path / "config.yaml"
    config.write_text(f"tmp_dir: {tmp_path}\nresult_cache_url: {redis_url}\n")
    assert main(["cache", "stats", "--config", str(config), "--only", "results"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out and "redis://:***@127.0.0.1:" in out and "0 layer results, 1 image analyses" in out
    assert main(["cache", "ls", "--json", "--config", str(config)]) == 0
    assert [e["subject"] for e in json.loads(capsys.readouterr().out)["results"]] == ["sha256:f"]
    assert main(["cache", "clear", "--json", "--config", str(config), "--only", "results"]) == 0
    assert json.loads(capsys.readouterr().out) == {"results": {"removed": 1}}
    wrong = redis_url.replace(PASSWORD, "not-the-password")
    config.write_text(f"tmp_dir: {tmp_path}\nresult_cache_url: {wrong}\n")
    assert main(["cache", "stats", "--config", str(config), "--only", "results"]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not-the-password" not in err and PASSWORD not in err
