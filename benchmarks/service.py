"""Images per minute: `layerscan batch` with N worker processes, and the service (`layerscan serve`,
API only, plus N `layerscan worker` processes, images submitted through its API), against
`layerscan analyze` run once per image in a loop, on the corpus images in a local docker-registry.

    .venv/bin/python benchmarks/service.py [--workers 1,2] [--service-workers 1,2,4] [--copies 3] [--image NAME ...]

Starts Debian's docker-registry on loopback (tests/registry_harness.py) and pushes each corpus
image under `--copies` repositories (the same blobs, as a registry full of images built on
the same bases holds them). Both sides run as child processes with the layer cache on and
cold at the start, so a layer shared by images is fetched once either way. Prints
images/minute and the ratio to the analyze loop; exits 1 when batch with 2 workers is under
the bar (1.6x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from registry_harness import (  # noqa: E402
    OCI_MANIFEST,
    RegistryServer,
    free_port,
    layout_manifest,
    push_layout,
    push_manifest,
    wait_port,
)

IMAGES = ROOT.parent / "shared" / "corpus" / "images"
BAR = 1.6  # batch --workers 2 over the analyze loop, in images per minute
CORPUS = ("debian-minbase", "debian-apps", "rpm-sqlite")


@contextlib.contextmanager
def corpus_registry(work: Path, names: tuple[str, ...], copies: int) -> Iterator[tuple[str, list[str]]]:
    """A registry holding `copies` repositories of each corpus image: (host, ["host/bench/NAME-i:latest", ...])."""
    server = RegistryServer(work / "registry", work / "storage")
    try:
        refs = []
        with requests.Session() as s:
            for i in range(copies):
                for name in names:
                    repo = f"bench/{name}-{i}"
                    push_layout(s, server.url, repo, "latest", IMAGES / name)
                    # Each copy gets a manifest digest of its own (an annotation) over the same blobs:
                    # the service analyzes an image once per digest, as Anchore does.
                    _, manifest = layout_manifest(IMAGES / name)
                    manifest.setdefault("annotations", {})["org.layerscan.bench.copy"] = str(i)
                    raw = json.dumps(manifest).encode()
                    push_manifest(s, server.url, repo, "latest", raw, manifest.get("mediaType", OCI_MANIFEST))
                    refs.append(f"{server.host}/{repo}:latest")
        yield server.host, refs
    finally:
        server.stop()


def layerscan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "layerscan", "-q", *args], check=True, stdout=subprocess.DEVNULL)


def per_minute(images: int, seconds: float) -> float:
    return images * 60.0 / seconds


def analyze_loop(refs: list[str], config: Path, out: Path) -> float:
    t0 = time.perf_counter()
    for i, ref in enumerate(refs):
        layerscan("analyze", f"registry:{ref}", "--config", str(config), "-o", str(out / f"{i}.json"))
    return time.perf_counter() - t0


def batch(refs: list[str], config: Path, out: Path, workers: int) -> float:
    listing = out / "images.txt"
    listing.write_text("".join(f"registry:{ref}\n" for ref in refs))
    t0 = time.perf_counter()
    layerscan("batch", str(listing), "--workers", str(workers), "--config", str(config), "--output-dir", str(out))
    return time.perf_counter() - t0


def service(refs: list[str], config_doc: dict, work: Path, workers: int) -> float:
    """Seconds from the first POST /images until every image is analyzed, with `workers` worker processes."""
    password = "bench-admin"
    port = free_port()
    doc = dict(config_doc, default_admin_password=password, service_dir=str(work / "state"))
    doc["services"] = {
        "apiext": {"listen": "127.0.0.1", "port": port},
        "analyzer": dict(doc["services"]["analyzer"], max_threads=1, port=0, cycle_timer_seconds=1),
    }
    workers_config, serve_config = work / "worker.yaml", work / "serve.yaml"
    workers_config.write_text(yaml.safe_dump(doc))
    doc["services"]["analyzer"] = dict(doc["services"]["analyzer"], enabled=False)  # serve answers, workers analyze
    serve_config.write_text(yaml.safe_dump(doc))
    url = f"http://127.0.0.1:{port}/v1"
    procs = [_quiet("serve", "--config", str(serve_config))]
    try:
        wait_port("127.0.0.1", port, timeout=30, proc=procs[0])
        procs += [_quiet("worker", "--config", str(workers_config)) for _ in range(workers)]
        with requests.Session() as s:
            s.auth = ("admin", password)
            while (
                sum(st["servicename"] == "analyzer" for st in s.get(f"{url}/system").json()["service_states"]) < workers
            ):
                time.sleep(0.1)
            t0 = time.perf_counter()
            for ref in refs:
                s.post(f"{url}/images", json={"tag": ref}).raise_for_status()
            while True:
                states = [i["analysis_status"] for i in s.get(f"{url}/images").json()]
                if len(states) != len(refs):
                    raise RuntimeError(f"{len(refs)} references are {len(states)} images: copies must differ")
                if "analysis_failed" in states:
                    raise RuntimeError("an image failed to analyze; see the service's logs")
                if states.count("analyzed") == len(refs):
                    return time.perf_counter() - t0
                time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


def _quiet(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "layerscan", "-q", *args], stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts for batch (default 1,2)")
    ap.add_argument(
        "--service-workers",
        default="1,2,4",
        help="comma-separated `layerscan worker` counts for the service ('' skips)",
    )
    ap.add_argument("--copies", type=int, default=3, help="repositories per corpus image (default 3)")
    ap.add_argument("--image", nargs="*", default=list(CORPUS))
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    service_counts = [int(n) for n in args.service_workers.split(",") if n]
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-service-") as tmp:
        work = Path(tmp)
        with corpus_registry(work, tuple(args.image), args.copies) as (host, refs):
            config = work / "config.yaml"
            scratch = work / "scratch"

            def fresh(name: str) -> Path:
                """A cold layer cache and an empty output directory."""
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
                out = work / name
                out.mkdir()
                return out

            config_doc = {
                "tmp_dir": str(scratch),
                "insecure_registries": [host],
                "services": {"analyzer": {"layer_cache_enable": True}},
            }
            config.write_text(yaml.safe_dump(config_doc))
            print(f"{len(refs)} images ({', '.join(args.image)} x {args.copies}), {cores} cores, layer cache on, cold")
            base = analyze_loop(refs, config, fresh("loop"))
            rows = [("analyze, once per image", base)]
            for n in counts:
                rows.append((f"batch --workers {n}", batch(refs, config, fresh(f"batch-{n}"), n)))
            for n in service_counts:
                rows.append(
                    (f"service, {n} worker{'s' if n > 1 else ''}", service(refs, config_doc, fresh(f"service-{n}"), n))
                )
    print(f"{'':<26}{'seconds':>9}{'images/min':>12}{'ratio':>8}")
    for label, seconds in rows:
        print(f"{label:<26}{seconds:>9.1f}{per_minute(len(refs), seconds):>12.1f}{base / seconds:>7.2f}x")
    two = dict(rows).get("batch --workers 2")
    if two is None:
        return 0
    ratio = base / two
    verdict = "meets" if ratio >= BAR else "is under"
    print(f"batch --workers 2 {verdict} the bar: {ratio:.2f}x the analyze loop (bar {BAR}x)")
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
