"""`layerscan worker` processes against a real registry (Debian's docker-registry) behind a
throttling proxy: the next free worker takes the next image, every image is analyzed exactly
once, a worker killed with kill -9 mid-analysis loses its image to another, a stopped
service resumes its queue, a job that keeps failing is analysis_failed, force requeues."""

from __future__ import annotations

import collections
import itertools
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from layerscan.config import load_config
from layerscan.service.exports import read_export
from layerscan.service.store import Store
from layerscan.service.submit import submit
from layerscan.service.worker import AnalyzerWorker
from registry_harness import REGISTRY_BIN, RegistryServer, free_port
from service_harness import (
    STATUS_PASSWORD,
    ThrottleProxy,
    WorkerProcess,
    app_image,
    push_image,
    service_config,
    wait_for,
)

pytestmark = pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed")

N_IMAGES = 10
_service_ids = itertools.count()


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("service-registry")
    server = RegistryServer(work, work / "storage")
    try:
        for n in range(N_IMAGES):
            push_image(server.url, f"apps/app{n}", "latest", app_image(n))
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_registry(registry_url: str) -> Iterator[ThrottleProxy]:
    proxy = ThrottleProxy(registry_url, delay=0.4)
    yield proxy
    proxy.stop()


class Service:
    """A service's state (config + store), and the worker processes a test starts on it."""

    def __init__(self, directory: Path, registry_host: str, **analyzer: object) -> None:
        self.registry_host = registry_host
        self.config_path = service_config(directory, registry_host, **analyzer)
        self.config = load_config(str(self.config_path))
        self.store = Store.open(self.config.service.database_url)
        self.workers: list[WorkerProcess] = []

    def submit(self, n: int, force: bool = False) -> str:
        return submit(self.store, self.config, f"{self.registry_host}/apps/app{n}:latest", None, force).image_digest

    def worker(self, *extra: str) -> WorkerProcess:
        w = WorkerProcess(self.config_path, *extra)
        self.workers.append(w)
        return w

    def status(self, digest: str) -> str:
        rec = self.store.get_image(digest)
        assert rec is not None
        return rec.analysis_status

    def all_done(self, digests: list[str]) -> bool:
        return all(self.status(d) in ("analyzed", "analysis_failed") for d in digests)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.store.close()


@pytest.fixture
def service(tmp_path: Path, slow_registry: ThrottleProxy) -> Iterator[Service]:
    s = Service(tmp_path / f"service-{next(_service_ids)}", slow_registry.host)
    yield s
    s.close()


def assert_analyzed_once_each(service: Service, digests: list[str]) -> None:
    stored = collections.Counter(d for w in service.workers for d in w.analyzed())
    assert sorted(stored) == sorted(digests), "every image analyzed"
    assert set(stored.values()) == {1}, f"no image analyzed twice: {stored}"
    for digest in digests:
        rec = service.store.get_image(digest)
        assert rec is not None and rec.analysis_status == "analyzed", rec
        export = service.store.get_report(digest, "anchore")
        assert export is not None and read_export(export).image_digest == digest
        assert service.store.get_report(digest, "layerscan") is not None
        assert rec.summary == read_export(export).summary
        assert rec.summary["os"] == 2 and rec.summary["python"] == 1 and rec.summary["npm"] == 1


def test_ten_images_three_workers_each_image_once(service: Service) -> None:
    digests = [service.submit(n) for n in range(N_IMAGES)]
    assert service.store.queue_depth()["not_analyzed"] == N_IMAGES
    for _ in range(3):
        service.worker()
    wait_for(lambda: service.all_done(digests), 120, "every image analyzed")
    assert_analyzed_once_each(service, digests)
    per_worker = [len(w.analyzed()) for w in service.workers]
    assert sum(per_worker) == N_IMAGES and all(n >= 1 for n in per_worker), per_worker
    for w in service.workers:
        assert w.terminate() == 0
    assert service.store.list_workers() == []  # each unregistered on SIGTERM


def test_kill9_mid_analysis_hands_the_image_to_another_worker(service: Service, slow_registry: ThrottleProxy) -> None:
    digests = [service.submit(n) for n in range(6)]
    slow_registry.hold()  # no blob until the kill: the victim's claimed image cannot finish before it
    victim = service.worker()

    def victims_job() -> str | None:
        for rec in service.store.list_images(analysis_status="analyzing"):
            if (rec.worker_id or "").startswith(victim.worker_prefix):
                return rec.image_digest
        return None

    wait_for(lambda: victims_job() is not None, 60, "the first worker to claim an image")
    lost = victims_job()
    assert lost is not None
    victim.kill9()
    slow_registry.release()
    assert victim.analyzed() == []
    survivors = [service.worker(), service.worker()]
    wait_for(lambda: service.all_done(digests), 120, "every image analyzed")
    assert_analyzed_once_each(service, digests)
    assert lost in [d for w in survivors for d in w.analyzed()]
    rec = service.store.get_image(lost)
    assert rec is not None and rec.attempts == 2  # the dead worker's claim, then the survivor's


def test_a_stopped_service_resumes_its_queue(service: Service) -> None:
    digests = [service.submit(n) for n in range(5)]
    first = service.worker()
    wait_for(lambda: len(first.analyzed()) >= 2, 60, "two images analyzed")
    assert first.terminate() == 0  # SIGTERM: the running analysis finishes or goes back to the queue
    depth = service.store.queue_depth()
    assert depth["analyzing"] == 0, depth
    assert depth["analyzed"] >= 2 and depth["not_analyzed"] >= 1, depth
    service.worker()
    wait_for(lambda: service.all_done(digests), 60, "the rest analyzed after the restart")
    assert_analyzed_once_each(service, digests)


def test_a_failing_job_is_analysis_failed_then_force_requeues(tmp_path: Path, slow_registry: ThrottleProxy) -> None:
    service = Service(tmp_path / "cached", slow_registry.host, layer_cache_enable=True)
    try:
        check_failure_force_and_status_port(service)
    finally:
        service.close()


def check_failure_force_and_status_port(service: Service) -> None:
    good = service.submit(0)
    missing = "sha256:" + "e" * 64
    # Queued as if its tag had resolved, then deleted from the registry: every pull fails with 404.
    service.store.add_image(
        missing,
        "f" * 64,
        f"{service.registry_host}/apps/gone:1",
        f"registry:{service.registry_host}/apps/gone@{missing}",
        b"{}",
        b"{}",
        missing,
    )
    port = free_port()
    worker = service.worker("--port", str(port))
    wait_for(lambda: service.all_done([good, missing]), 60, "both images done")
    rec = service.store.get_image(missing)
    assert rec is not None
    assert (rec.analysis_status, rec.attempts) == ("analysis_failed", 2)
    assert "HTTP 404" in rec.last_error, rec.last_error
    assert service.status(good) == "analyzed"

    base = f"http://127.0.0.1:{port}"
    assert requests.get(f"{base}/health", timeout=5).text == "ok"  # public, as Anchore's
    for path in ("/status", "/metrics"):
        refused = requests.get(f"{base}{path}", timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(f"{base}{path}", auth=("admin", "wrong"), timeout=5).status_code == 401
    admin = ("admin", STATUS_PASSWORD)
    status = requests.get(f"{base}/status", auth=admin, timeout=5).json()
    assert status["worker_id"].startswith(worker.worker_prefix) and status["max_threads"] == 1
    assert status["queue"]["analysis_failed"] == 1
    metrics_text = requests.get(f"{base}/metrics", auth=admin, timeout=5).text
    assert "anchore_analysis_time_seconds_count 1.0" in metrics_text
    assert "layerscan_images_failed_total 2.0" in metrics_text
    cache_bytes = re.search(r"^layerscan_layer_cache_bytes (\S+)$", metrics_text, re.MULTILINE)
    layers = json.loads(service.store.get_image(good).manifest)["layers"]  # type: ignore[union-attr]
    assert cache_bytes is not None and float(cache_bytes.group(1)) == sum(x["size"] for x in layers)

    before = service.store.get_image(good)
    assert before is not None and before.analyzed_at is not None
    assert service.submit(0) == good and service.status(good) == "analyzed"  # no force: stays analyzed
    service.submit(0, force=True)
    wait_for(lambda: len(worker.analyzed()) == 2, 60, "the forced image analyzed again")
    after = service.store.get_image(good)
    assert after is not None and after.analysis_status == "analyzed"
    assert after.analyzed_at is not None and after.analyzed_at > before.analyzed_at


def test_stop_gives_unfinished_analyses_back_and_drops_their_results(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="layerscan.service.worker")
    digest = service.submit(0)
    worker = AnalyzerWorker(service.config, service.store, worker_id="in-process")
    worker.start()
    assert [w.worker_id for w in service.store.list_workers()] == ["in-process"]
    wait_for(lambda: service.status(digest) == "analyzing", 30, "the worker to claim the image")
    worker.stop(graceful=True, timeout=0)  # the throttled registry keeps the analysis running past this
    rec = service.store.get_image(digest)
    assert rec is not None
    assert (rec.analysis_status, rec.attempts, rec.worker_id) == ("not_analyzed", 0, None)
    assert service.store.list_workers() == []
    wait_for(lambda: "result dropped" in caplog.text, 30, "the abandoned analysis to end")
    assert service.status(digest) == "not_analyzed"
    assert service.store.get_report(digest, "anchore") is None


def test_a_status_port_that_nobody_could_log_in_to_is_refused(tmp_path: Path) -> None:
    """require_auth (the default) with no user: the worker says so and exits 2, rather than serve a
    port that answers every request with 401 or, worse, one without auth."""
    config = tmp_path / "config.yaml"
    config.write_text(f"service_dir: {tmp_path / 'service'}\nservices:\n  analyzer:\n    port: {free_port()}\n")
    done = subprocess.run(
        [sys.executable, "-m", "layerscan", "worker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "services.analyzer.require_auth is true but no user can log in" in done.stderr
