"""`layerscan batch FILE`: analyze many images on one host, in parallel worker processes, without a server."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from ..aside import disable as disable_aside
from ..config import Config, load_config
from ..errors import ConfigError, ExitCode, LayerscanError
from ..report import FORMATS
from .analyze import write_atomically
from .options import add_shared_options, positive

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger(__name__)

EXTENSIONS = {"json": "json", "anchore": "anchore.json", "table": "txt", "cyclonedx": "cdx.json", "spdx": "spdx.json"}

NAME = "batch"
HELP = "analyze a list of images in parallel processes; one report and one JSON line per image"
DESCRIPTION = (
    "Analyze every image listed in FILE with N worker processes that share the layer cache, "
    "writing one report per image to --output-dir and one JSON line per image to stdout."
)
EPILOG = """\
FILE has one image per line, in any form 'layerscan analyze' accepts (registry:REF,
docker://REF, oci-dir:PATH, oci-archive:FILE, docker-archive:FILE); blank lines and
lines starting with # are skipped. '-' reads the list from stdin.

The worker processes share the layer cache (TMP_DIR/anchore_layercache, always on
here), so a layer that many images share is downloaded once. A failed image never
stops the others.

stdout: one JSON line per image, as each finishes:
  {"source", "manifest_digest", "status": "analyzed"|"failed", "seconds",
   "counts": {"packages": {TYPE: N}, "files", "secrets", "secrets_suppressed": {ALLOW RULE: N},
   "layers"}, "report", "error"}
stderr: a progress bar over the images when it is a terminal, and the log.

examples:
  layerscan batch images.txt --output-dir reports/
  layerscan batch images.txt --workers 8 --format anchore --output-dir exports/ > results.jsonl
  grep -v '^#' images.txt | layerscan batch - --config config.yaml --output-dir out/

--celery submits every image to the cluster instead (the config's queue: redis://… and
its credentials.database.db_connect, as 'layerscan serve' does): each is resolved at its
registry, queued, analyzed by the 'layerscan worker --celery' processes, and its stored
report (--format json or anchore) written to DIR. Only registry references (REF or
registry:REF) can go to a cluster; "counts" is then the Anchore summary the service stores.

exit codes: 0 every image analyzed, 2 usage or configuration error,
3 at least one image failed (its JSON line says why).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="image references, one per line ('-': stdin)")
    add_shared_options(
        p,
        config="registries, tmp_dir, rules, ...",
        report_format=True,
        celery="submit to the Celery cluster of the config's queue: and database instead of analyzing here",
    )
    p.add_argument(
        "--workers",
        type=positive("workers"),
        metavar="N",
        help=f"worker processes (default: the CPUs this process may use, here {len(os.sched_getaffinity(0))})",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write each image's report to DIR/NNNN-NAME.EXT (created if missing); without it, only the JSON lines",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    config = dataclasses.replace(config, layer_cache_enable=True, secrets_all=config.secrets_all or args.secrets_all)
    specs = list(_read_list(args.file))
    if not specs:
        raise ConfigError(f"{args.file}: no image references in it")
    outdir = Path(args.output_dir) if args.output_dir else None
    if outdir is not None:
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--output-dir {outdir}: {e.strerror or e}") from None
    if args.celery:
        return _run_on_cluster(config, specs, outdir, args.format)
    cores = len(os.sched_getaffinity(0))
    workers = min(args.workers or cores, len(specs))
    if config.scan_threads is None:  # the workers share the cores: each layer gets its share, not all of them
        config = dataclasses.replace(config, scan_threads=max(1, cores // workers))
    # Loaded here: `layerscan analyze` imports this module too, and a one-shot run's start-up counts.
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: children fork from a clean process that already imported the pipeline.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["layerscan.service.jobs"])
    failed = 0
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(config, logging.getLogger().level)
    ) as pool:
        futures: dict[Future[dict[str, Any]], str] = {
            pool.submit(_analyze_one, spec, _report_path(outdir, i, spec, args.format), args.format): spec
            for i, spec in enumerate(specs, 1)
        }
        bar = _bar(len(specs)) if sys.stderr.isatty() else None
        try:
            for fut in as_completed(futures):
                try:
                    line = fut.result()
                except BrokenProcessPool:
                    line = _result(futures[fut], error="the worker process died (killed, or out of memory)")
                failed += line["status"] != "analyzed"
                text = json.dumps(line)
                if bar is not None:
                    bar.write(text, file=sys.stdout)
                    bar.update(1)
                else:
                    print(text, flush=True)
        finally:
            if bar is not None:
                bar.close()
    if failed:
        log.error("%d of %d images failed", failed, len(specs))
    return ExitCode.NOT_ANALYZED if failed else ExitCode.OK


def _run_on_cluster(config: Config, specs: list[str], outdir: Path | None, fmt: str) -> int:
    """Submit every image to the Celery cluster, wait for the workers, write the stored reports."""
    from ..service.celery_queue import queue_url
    from ..service.jobs import STORED_REPORTS
    from ..service.store import ANALYZED, FAILED, Store
    from ..service.submit import SubmitError, submit

    queue_url(config, celery=True)
    kind = {f: k for k, f in STORED_REPORTS.items()}.get(fmt)
    if kind is None:
        raise ConfigError(
            f"--celery: the cluster stores {' and '.join(sorted(STORED_REPORTS.values()))} reports, not {fmt}"
        )
    lines: dict[int, dict[str, Any]] = {}
    pending: dict[int, str] = {}  # line -> image digest
    t0 = time.perf_counter()
    with Store.open(config.service.database_url) as store:
        for i, spec in enumerate(specs):
            ref = spec.removeprefix("registry:")
            if ":" in spec and spec.split(":", 1)[0] in ("docker", "oci-dir", "oci-archive", "docker-archive"):
                lines[i] = _result(spec, error="only registry references can be analyzed by a cluster")
                print(json.dumps(lines[i]), flush=True)
                continue
            try:
                pending[i] = submit(store, config, ref, None).image_digest
            except SubmitError as e:
                lines[i] = _result(spec, error=f"not queued: HTTP {e.status}: {e.reason}")
                print(json.dumps(lines[i]), flush=True)
        while pending:
            for i, digest in list(pending.items()):
                record = store.get_image(digest)
                if record is None:
                    lines[i] = _result(specs[i], digest=digest, error="deleted from the service meanwhile")
                elif record.analysis_status == FAILED:
                    lines[i] = _result(specs[i], digest=digest, error=record.last_error)
                elif record.analysis_status == ANALYZED:
                    report = _report_path(outdir, i + 1, specs[i], fmt)
                    if report is not None:
                        write_atomically(report, functools.partial(_copy, store.get_report(digest, kind) or b""))
                    seconds = time.perf_counter() - t0
                    lines[i] = _result(
                        specs[i], digest=digest, seconds=seconds, counts=dict(record.summary), report=report
                    )
                else:
                    continue
                del pending[i]
                print(json.dumps(lines[i]), flush=True)
            time.sleep(0.5)
    failed = sum(line["status"] != "analyzed" for line in lines.values())
    if failed:
        log.error("%d of %d images failed", failed, len(specs))
    return ExitCode.NOT_ANALYZED if failed else ExitCode.OK


def _copy(data: bytes, out: TextIO) -> None:
    out.write(data.decode())


# ---------------------------------------------------------------------------- in the worker processes

_CONFIG: Config | None = None


def _init_worker(config: Config, level: int) -> None:
    global _CONFIG
    _CONFIG = config
    disable_aside()  # the workers already share every core: a helper process per image would only add forks
    logging.basicConfig(level=level, format="layerscan: %(levelname)s: %(message)s", stream=sys.stderr)


def _analyze_one(spec: str, report: str | None, fmt: str) -> dict[str, Any]:
    """One image, in a worker process: its JSON line. Errors are caught here, so one image never stops the rest."""
    from ..service.jobs import analyze_image, counts

    assert _CONFIG is not None, "the pool initializer sets the config"
    t0 = time.perf_counter()
    try:
        analysis = analyze_image(spec, _CONFIG)
        if report is not None:
            write_atomically(report, lambda out: FORMATS[fmt](analysis, out))
    except LayerscanError as e:
        return _result(spec, seconds=time.perf_counter() - t0, error=str(e))
    except Exception as e:  # a bug: say so on this image's line, keep going with the others
        log.exception("%s: analysis crashed", spec)
        return _result(spec, seconds=time.perf_counter() - t0, error=f"internal error: {type(e).__name__}: {e}")
    return _result(
        spec,
        digest=analysis.manifest_digest,
        seconds=time.perf_counter() - t0,
        counts=counts(analysis),
        report=report,
    )


def _result(
    spec: str,
    *,
    digest: str | None = None,
    seconds: float = 0.0,
    counts: dict[str, object] | None = None,
    report: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "source": spec,
        "manifest_digest": digest,
        "status": "failed" if error else "analyzed",
        "seconds": round(seconds, 3),
        "counts": counts,
        "report": report,
        "error": error,
    }


# ---------------------------------------------------------------------------- helpers


def _read_list(path: str) -> Iterator[str]:
    try:
        lines = sys.stdin.read().splitlines() if path == "-" else Path(path).read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _report_path(outdir: Path | None, index: int, spec: str, fmt: str) -> str | None:
    """DIR/NNNN-NAME.EXT: the line number keeps two lines naming the same image apart."""
    if outdir is None:
        return None
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._")[:120] or "image"
    return str(outdir / f"{index:04d}-{name}.{EXTENSIONS.get(fmt, fmt)}")


def _bar(total: int) -> tqdm[NoReturn]:
    from tqdm import tqdm

    return tqdm(total=total, unit="image", desc="batch", file=sys.stderr, dynamic_ncols=True)
