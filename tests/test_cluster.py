"""The scale-out deployment with real components started here: Debian's redis-server (Celery's broker
and the shared result cache), PostgreSQL (the state), docker-registry (the images), one
`layerscan serve` (the API, enqueueing to Celery) and `layerscan worker --celery` processes.

- 20 images sharing two base layers, submitted through the API, anchore-cli 0.9.3 and
  `batch --celery` to three workers: every image
  analyzed, every distinct layer scanned exactly once across the cluster (the workers' result
  cache misses) and downloaded at most once, the stored reports equal to `analyze`'s;
- a worker killed with kill -9 mid-analysis and Redis restarted empty mid-run: every image is
  analyzed, by a live worker, and stored once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import postgres_harness
from api_harness import ADMIN_PASSWORD, ServeProcess, admin_session, run_cli
from redis_harness import REDIS_BIN, RedisServer
from registry_harness import REGISTRY_BIN, FaultProxy, free_port
from service_harness import ThrottleProxy, WorkerProcess, app_registry, wait_for

pytestmark = [
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed"),
    pytest.mark.skipif(not Path(REDIS_BIN).exists(), reason=f"{REDIS_BIN} is not installed"),
    pytest.mark.skipif(not postgres_harness.available(), reason="PostgreSQL's server is not installed"),
]

N_IMAGES = 20


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultProxy, list[list[str]]]]:
    with app_registry(tmp_path_factory.mktemp("cluster-registry"), N_IMAGES) as pushed:
        yield pushed


@pytest.fixture(scope="module")
def postgres() -> Iterator[postgres_harness.PostgresServer]:
    server = postgres_harness.PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password="broker-secret")
    yield server
    server.stop()


class Cluster:
    """A config for the cluster (PostgreSQL state, Celery on Redis), and the processes started on it."""

    def __init__(
        self, directory: Path, registry_host: str, db_url: str, redis_url: str, result_cache: bool, **analyzer: object
    ) -> None:
        self.api_port = free_port()
        settings = {"max_threads": 1, "lease_seconds": 5, "max_attempts": 3, "port": 0, **analyzer}
        doc = {
            "tmp_dir": str(directory / "scratch"),  # one host: the workers share its layer cache
            "insecure_registries": [registry_host],
            "default_admin_password": ADMIN_PASSWORD,
            "credentials": {"database": {"db_connect": db_url}},
            "queue": redis_url,  # db 0: Celery's
            "result_cache_enable": result_cache,
            "result_cache_url": redis_url.rsplit("/", 1)[0] + "/1",  # db 1: shared by every host
            "services": {"analyzer": settings, "apiext": {"listen": "127.0.0.1", "port": self.api_port}},
        }
        (directory / "scratch").mkdir(parents=True, exist_ok=True)
        self.config = directory / "config.yaml"
        self.config.write_text(yaml.safe_dump(doc))
        self.registry_host = registry_host
        self.serve = ServeProcess(self.config, self.api_port)
        self.workers: list[tuple[WorkerProcess, int]] = []
        self.api = admin_session()

    def worker(self) -> WorkerProcess:
        port = free_port()
        w = WorkerProcess(self.config, "--celery", "--port", str(port))
        self.workers.append((w, port))
        return w

    def submit(self, n: int) -> str:
        r = self.api.post(f"{self.serve.url}/images", json={"tag": f"{self.registry_host}/apps/app{n}:latest"})
        assert r.status_code == 200, r.text
        digest: str = r.json()[0]["imageDigest"]
        return digest

    def cli_add(self, n: int) -> str:
        """`anchore-cli image add`, the real client, against this cluster's API."""
        added = run_cli(self.serve.url, "--json", "image", "add", f"{self.registry_host}/apps/app{n}:latest")
        assert added.returncode == 0, added.stdout + added.stderr
        digest: str = json.loads(added.stdout)[0]["imageDigest"]
        return digest

    def statuses(self, digests: list[str]) -> list[str]:
        return [self.api.get(f"{self.serve.url}/images/{d}").json()[0]["analysis_status"] for d in digests]

    def wait_analyzed(self, digests: list[str], timeout: float) -> None:
        wait_for(lambda: set(self.statuses(digests)) == {"analyzed"}, timeout, "every image analyzed", 0.5)

    def layerscan(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "layerscan", *args, "--config", str(self.config)]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    def stop(self) -> None:
        for w, _ in self.workers:
            w.stop()
        self.serve.stop()


def metric(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    assert found is not None, f"{name}{labels} not in /metrics"
    return float(found.group(1))


def test_twenty_images_three_workers_each_layer_scanned_once(
    registry: tuple[FaultProxy, list[list[str]]],
    postgres: postgres_harness.PostgresServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    proxy, layers = registry
    proxy.reset()
    db_url = postgres.create_database("cluster")
    cluster = Cluster(tmp_path, proxy.host, db_url, redis_server.url, result_cache=True)
    try:
        for _ in range(3):
            cluster.worker()
        digests = [cluster.submit(n) for n in range(N_IMAGES - 6)]
        # Two through anchore-cli: serve enqueues them to Celery, and only the workers analyze them.
        digests += [cluster.cli_add(n) for n in (N_IMAGES - 6, N_IMAGES - 5)]
        # The last four through `batch --celery`, which waits for the cluster and writes the stored reports.
        listing = tmp_path / "images.txt"
        listing.write_text("".join(f"{proxy.host}/apps/app{n}:latest\n" for n in range(N_IMAGES - 4, N_IMAGES)))
        out = tmp_path / "out"
        batch = cluster.layerscan("batch", str(listing), "--celery", "--format", "anchore", "--output-dir", str(out))
        assert batch.returncode == 0, batch.stderr
        lines = [json.loads(line) for line in batch.stdout.splitlines()]
        assert [line["status"] for line in lines] == ["analyzed"] * 4
        digests += [line["manifest_digest"] for line in lines]
        cluster.wait_analyzed(digests, timeout=120)
        waited = run_cli(cluster.serve.url, "image", "wait", f"{proxy.host}/apps/app{N_IMAGES - 5}:latest")
        assert waited.returncode == 0 and "Analysis Status: analyzed" in waited.stdout, waited.stdout + waited.stderr

        distinct = sorted({d for image in layers for d in image})
        assert len(distinct) == N_IMAGES + 2, "20 top layers on two shared base layers"
        # The workers' status ports need the same users as the API.
        scraped = [
            admin_session().get(f"http://127.0.0.1:{port}/metrics", timeout=10).text for _, port in cluster.workers
        ]
        layer_misses = sum(metric(t, "layerscan_result_cache_misses_total", '{kind="layer"}') for t in scraped)
        image_misses = sum(metric(t, "layerscan_result_cache_misses_total", '{kind="image"}') for t in scraped)
        assert layer_misses == len(distinct), "every distinct layer scanned exactly once across the cluster"
        assert image_misses == N_IMAGES
        assert max(proxy.layer_gets(distinct).values()) <= 1, "no layer downloaded twice on this host"
        analyzed_by = [w.analyzed() for w, _ in cluster.workers]
        assert sorted(d for got in analyzed_by for d in got) == sorted(digests), "each image stored once"
        assert sum(1 for got in analyzed_by if got) >= 2, "the workers shared the queue"

        for n in (0, N_IMAGES - 1):
            record = cluster.api.get(f"{cluster.serve.url}/images/{digests[n]}").json()[0]
            stored = cluster.api.get(f"{cluster.serve.url}/images/{digests[n]}/content/os").json()
            assert [p["package"] for p in stored["content"]] == ["base-files", "bash"]
            assert record["analysis_status"] == "analyzed"
        for line in (lines[0], lines[-1]):  # the stored export, byte for byte `analyze`'s of the same source, cold
            source = f"registry:{line['source'].rsplit(':', 1)[0]}@{line['manifest_digest']}"  # as the worker's
            analyzed = cluster.layerscan("analyze", source, "--format", "anchore", "--no-result-cache")
            assert analyzed.returncode == 0, analyzed.stderr
            assert Path(line["report"]).read_text() == analyzed.stdout
        assert redis_server.password not in cluster.serve.log() + "".join(w.log() for w, _ in cluster.workers)
    finally:
        cluster.stop()


def test_kill_9_and_a_redis_restart_lose_nothing_and_store_nothing_twice(
    registry: tuple[FaultProxy, list[list[str]]],
    postgres: postgres_harness.PostgresServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    proxy, _ = registry
    slow = ThrottleProxy(proxy.url, delay=0.4)
    db_url = postgres.create_database("killed")
    cluster = Cluster(tmp_path, slow.host, db_url, redis_server.url, result_cache=False, lease_seconds=3)
    try:
        digests = [cluster.submit(n) for n in range(6)]  # queued before any worker runs
        slow.hold()  # no blob until the kill: the victim's first job cannot finish before it
        victim, _ = cluster.worker(), cluster.worker()
        wait_for(lambda: "analyzing registry:" in victim.log(), 60, "the victim to start an analysis")
        victim.kill9()
        slow.release()
        in_flight = re.findall(r"analyzing registry:\S+@(sha256:[0-9a-f]{64})", victim.log())
        lost = [d for d in in_flight if d not in victim.analyzed()]
        assert lost, "killed mid-analysis"
        redis_server.restart()  # empty: every message not yet taken is gone with it
        cluster.worker()
        cluster.wait_analyzed(digests, timeout=120)

        survivors = [w for w, _ in cluster.workers if w is not victim]
        stored = [d for w in survivors for d in w.analyzed()] + victim.analyzed()
        assert sorted(stored) == sorted(digests), "every image stored exactly once"
        assert set(lost) <= {d for w in survivors for d in w.analyzed()}, "the killed worker's image went to another"
    finally:
        cluster.stop()
        slow.stop()


def test_worker_celery_without_a_broker_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"service_dir": str(tmp_path / "state")}))
    result = subprocess.run(
        [sys.executable, "-m", "layerscan", "worker", "--celery", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "queue: redis://" in result.stderr and "Traceback" not in result.stderr
