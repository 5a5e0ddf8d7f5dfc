"""`layerscan serve` with its in-process analyzer, against a real registry behind a throttling proxy:
it analyzes what is submitted through its API, stops cleanly on SIGTERM mid-queue, and a
restarted serve resumes the queue where it was: every image analyzed, none twice."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from api_harness import ServeProcess, admin_session, api_config, api_port
from layerscan.config import load_config
from layerscan.service.store import Store
from registry_fixtures import Pushed
from registry_harness import REGISTRY_BIN
from service_harness import ThrottleProxy, app_image, push_image, wait_for

pytestmark = pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed")

N_IMAGES = 4


@pytest.fixture(scope="module")
def slow_registry(registry: Pushed) -> Iterator[ThrottleProxy]:
    """Small images (tests/service_harness.py) in the session's registry, served slowly."""
    for n in range(N_IMAGES):
        push_image(registry.server.url, f"serve/app{n}", "latest", app_image(n))
    proxy = ThrottleProxy(registry.server.url, delay=0.3)
    yield proxy
    proxy.stop()


def analyzed_by(serve: ServeProcess) -> list[str]:
    return re.findall(r": analyzed (sha256:[0-9a-f]{64}) in ", serve.log())


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text exposition."""
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        if "{" not in name
    }


def statuses(url: str) -> dict[str, str]:
    return {i["imageDigest"]: i["analysis_status"] for i in admin_session().get(f"{url}/images").json()}


def test_sigterm_mid_queue_then_restart_resumes(tmp_path: Path, slow_registry: ThrottleProxy) -> None:
    port = api_port()
    config = api_config(
        tmp_path, slow_registry.host, api_port=port, max_threads=1, lease_seconds=30, layer_cache_enable=True
    )
    # The layer cache's counts are the point here: with the result cache the base layers would not be read at all.
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "result_cache_enable": False}))
    first = ServeProcess(config, port, name="serve-1")
    try:
        digests = []
        for n in range(N_IMAGES):
            resp = admin_session().post(
                f"{first.url}/images", json={"tag": f"{slow_registry.host}/serve/app{n}:latest"}
            )
            assert resp.status_code == 200, resp.text
            digests.append(resp.json()[0]["imageDigest"])
        wait_for(lambda: len(analyzed_by(first)) >= 1, 120, "the first image analyzed")
        assert first.terminate() == 0, first.log()
    finally:
        first.stop()
    done_first = analyzed_by(first)
    assert "stopping" in first.log()

    with Store.open(load_config(str(config)).service.database_url) as store:
        depth = store.queue_depth()  # between the two: what finished is stored, the rest is queued again
    assert depth["analyzing"] == 0 and depth["analyzed"] == len(done_first), depth
    assert depth["not_analyzed"] == N_IMAGES - len(done_first) >= 1, f"the queue was not mid-way: {depth}"

    second = ServeProcess(config, port, name="serve-2")
    try:
        wait_for(lambda: set(statuses(second.url).values()) == {"analyzed"}, 180, "the queue finished", interval=0.5)
        # The images share their two base layers, cached by the first serve: the second reads them from the cache.
        metrics = metric_values(admin_session().get(f"http://127.0.0.1:{port}/metrics").text)
        assert metrics["layerscan_layer_cache_hits_total"] >= 2 * (N_IMAGES - len(done_first))
        assert metrics["layerscan_layer_cache_misses_total"] == N_IMAGES - len(done_first)  # each one's own top layer
        assert metrics["layerscan_layer_cache_bytes"] > 0
        assert metrics["layerscan_images_analyzed_total"] == N_IMAGES - len(done_first)
        assert second.terminate() == 0
    finally:
        second.stop()
    counted = collections.Counter(done_first + analyzed_by(second))
    assert sorted(counted) == sorted(digests) and set(counted.values()) == {1}, counted
