"""The reports of a real analysis (debian-apps): the Anchore image export against the
example export and the policy engine loader's requirements (anchore-format.md §2, §6),
the layerscan JSON shape, and the table."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import re
import stat
import tarfile
import zipfile

import pytest

from analyzed import analysis, ground_truth
from conftest import SHARED, answers
from layerscan.catalog import npm, python
from layerscan.catalog.java import JavaCataloger
from layerscan.catalog.metadata import (
    ApkFile,
    ApkMetadata,
    DpkgFile,
    DpkgMetadata,
    FileDigest,
    NugetMetadata,
    PythonMetadata,
    RpmFile,
    RpmMetadata,
)
from layerscan.catalog.model import Package
from layerscan.filetree import FinalFile, ImageFiles
from layerscan.report import FORMATS
from layerscan.report.anchore.files import file_list, othernames
from layerscan.report.anchore.image_report import squashed_tar_size
from layerscan.report.anchore.os_packages import os_package_list, pkgfilemeta
from layerscan.report.anchore.packages import library_entry, package_list
from layerscan.report.anchore.regexp_matches import rule_key
from layerscan.report.jsonstream import dump
from layerscan.scan.model import FileRecord

IMAGE = "debian-apps"
ALLINFO_REQUIRED = {"fullpath", "name", "mode", "linkdst_fullpath", "linkdst", "size", "type"}


@functools.cache
def example_imagedata() -> dict:
    """The imagedata of the example Anchore export in shared/docs."""
    return json.loads((SHARED / "docs" / "anchore-example-export.json").read_text())[0]["image"]["imagedata"]


def render(fmt: str) -> str:
    out = io.StringIO()
    FORMATS[fmt](analysis(IMAGE), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def export() -> list:
    return json.loads(render("anchore"))


@pytest.fixture(scope="module")
def report(export: list) -> dict:
    return export[0]["image"]["imagedata"]["analysis_report"]


@pytest.fixture(scope="module")
def native_doc() -> dict:
    return json.loads(render("json"))


def base(report: dict, analyzer: str, element: str) -> dict:
    return report[analyzer][element]["base"]


def same_types(ours, example, where: str = "") -> None:
    """Every key of the example is in ours with the same JSON type, recursively for dicts."""
    assert type(ours) is type(example) or (example is None and ours is None), where
    if isinstance(example, dict) and where.count(".") < 2:
        for key, value in example.items():
            assert key in ours, f"{where}.{key} missing"
            if value is not None:
                same_types(ours[key], value, f"{where}.{key}")


# ----------------------------------------------------------------------------- image export


@pytest.mark.corpus
def test_export_wrapper_and_image_report(export: list) -> None:
    a = analysis(IMAGE)
    assert isinstance(export, list) and len(export) == 1
    image = export[0]["image"]
    hex_id = a.config_digest.split(":")[1]
    assert image["imageId"] == hex_id
    data = image["imagedata"]
    assert set(data) == set(example_imagedata())
    assert data["analyzer_manifest"] == {}
    ir = data["image_report"]
    same_types(ir, example_imagedata()["image_report"], "image_report")
    assert set(ir["meta"]) == set(example_imagedata()["image_report"]["meta"])
    assert ir["meta"]["imageId"] == hex_id and ir["meta"]["shortId"] == hex_id[:12]
    assert ir["layers"] == ir["familytree"] == [layer.descriptor.digest for layer in a.layers]
    # The loader derives the image digest from RepoDigests[0].
    assert ir["docker_data"]["RepoDigests"][0].split("@", 1)[1] == a.manifest_digest
    assert ir["docker_data"]["Architecture"] == "amd64"


@pytest.mark.corpus
def test_docker_history_follows_config_history(export: list) -> None:
    ir = export[0]["image"]["imagedata"]["image_report"]
    history = answers(IMAGE)["history"]
    assert len(ir["docker_history"]) == len(history)
    layers = iter(answers(IMAGE)["layers"])
    for entry, h in zip(ir["docker_history"], history, strict=False):
        assert set(entry) == {"Created", "CreatedBy", "Comment", "Id", "Size", "Tags"}
        if h.get("empty_layer"):
            assert (entry["Id"], entry["Size"]) == ("<missing>", 0)
        else:
            layer = next(layers)
            assert (entry["Id"], entry["Size"]) == (layer["digest"], layer["size"])
    assert ir["dockerfile_contents"].startswith("FROM scratch\n")
    assert ir["dockerfile_contents"].count("\n") == 1 + sum(1 for h in history if h.get("created_by"))
    assert ir["dockerfile_mode"] == "Guessed"


@pytest.mark.corpus
def test_sizebytes_is_a_plausible_squashed_tar_size(export: list) -> None:
    size = export[0]["image"]["imagedata"]["image_report"]["meta"]["sizebytes"]
    data = answers(IMAGE)["final_filesystem"]["regular_file_bytes"]
    assert isinstance(size, int) and size % 10240 == 0
    assert data < size < data + 2048 * answers(IMAGE)["final_filesystem"]["entries"]


@pytest.mark.corpus
def test_every_example_element_has_our_types(report: dict) -> None:
    # No malware scanner; library package elements exist only for ecosystems the image has.
    optional = {
        ("package_list", e) for e in ("pkgs.npms", "pkgs.gems", "pkgs.python", "pkgs.java", "pkgs.go", "pkgs.binary")
    }
    for analyzer, elements in example_imagedata()["analysis_report"].items():
        if analyzer == "malware":
            continue
        for element, body in elements.items():
            if (analyzer, element) in optional and element not in report[analyzer]:
                continue
            ours = base(report, analyzer, element)
            assert ours, f"{analyzer}/{element} is empty"
            kinds = {type(v) for v in body["base"].values()}
            assert {type(v) for v in ours.values()} == kinds, f"{analyzer}/{element}"


@pytest.mark.corpus
def test_cpes_in_every_package_element(report: dict) -> None:
    """`cpes` is the package's CPE list (syft's artifact cpes, as Anchore copies them) in
    pkgs.allinfo and each language element."""
    by_name: dict[str, list[list[str]]] = {}
    for p in analysis(IMAGE).packages:
        by_name.setdefault(p.name.lower(), []).append(list(p.cpes))  # python entries keep the declared case
    allinfo = base(report, "package_list", "pkgs.allinfo")
    assert allinfo["adduser"]["cpes"] == ["cpe:2.3:a:adduser:adduser:3.134:*:*:*:*:*:*:*"]
    assert all(v["cpes"] in by_name[k.lower()] for k, v in allinfo.items())
    for element in ("pkgs.npms", "pkgs.gems", "pkgs.python", "pkgs.java"):
        entries = base(report, "package_list", element).values()
        assert entries and all(e["cpes"] and e["cpes"] in by_name[e["name"].lower()] for e in entries), element
    npms = base(report, "package_list", "pkgs.npms")
    assert npms["/app/node_modules/express/package.json"]["cpes"] == [
        "cpe:2.3:a:openjsf:express:4.22.3:*:*:*:*:node.js:*:*"
    ]


@pytest.mark.corpus
def test_analyzer_meta_and_layer_info(report: dict) -> None:
    meta = base(report, "analyzer_meta", "analyzer_meta")
    assert meta == {"DISTRO": "debian", "DISTROVERS": "12", "LIKEDISTRO": "debian"}
    layer_map = json.loads(base(report, "layer_info", "layers_to_dockerfile")["dockerfile_to_layer_map"])
    assert len(layer_map) == len(answers(IMAGE)["history"])
    digests = [layer["digest"].split(":")[1] for layer in answers(IMAGE)["layers"]]
    assert [e["layer"] for e in layer_map if e["layer"] != "unknown"] == digests
    assert all(
        isinstance(e["layer_sizebytes"], str) and set(e) == {"layer", "dockerfile_line", "layer_sizebytes"}
        for e in layer_map
    )


@pytest.mark.corpus
def test_file_list_matches_ground_truth(report: dict) -> None:
    truth = ground_truth(IMAGE)
    files_all = base(report, "file_list", "files.all")
    allinfo = base(report, "file_list", "files.allinfo")
    assert set(files_all) == set(allinfo) == set(truth)
    example_keys = set(
        json.loads(next(iter(example_imagedata()["analysis_report"]["file_list"]["files.allinfo"]["base"].values())))
    )
    for path, t in truth.items():
        mode = int(t["mode"], 8)
        assert files_all[path] == oct(mode), path
        info = json.loads(allinfo[path])
        assert set(info) == example_keys and ALLINFO_REQUIRED <= set(info)
        assert info["fullpath"] == info["name"] == path
        assert stat.S_IMODE(info["mode"]) == mode and (info["uid"], info["gid"]) == (t["uid"], t["gid"])
        kind = {"file": "file", "hardlink": "file", "dir": "dir", "symlink": "slink"}[t["type"]]
        assert info["type"] == kind, path
        assert stat.S_IFMT(info["mode"]) == {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "slink": stat.S_IFLNK}[kind]
        if t["type"] == "symlink":
            assert info["linkdst"] == t["linkname"] and info["size"] == len(t["linkname"])
        else:
            assert info["linkdst"] is None and info["size"] == t.get("size", 0), path


@pytest.mark.corpus
def test_allinfo_link_quirks(report: dict) -> None:
    allinfo = base(report, "file_list", "files.allinfo")
    rel = json.loads(allinfo["/app/start.js"])  # -> server.js
    # Anchore quirk: normpath(join("server.js", "/app/start.js")) is the link's own path.
    assert (rel["linkdst"], rel["linkdst_fullpath"]) == ("server.js", "/app/start.js")
    assert rel["othernames"] == {"/app/start.js": True, "server.js": True}
    absolute = json.loads(allinfo["/usr/local/bin/orders-server"])
    assert absolute["linkdst_fullpath"] == "/app/server.js" and absolute["mode"] == 0o120777
    hard = json.loads(allinfo["/usr/local/bin/healthcheck"])
    assert (hard["type"], hard["size"], hard["linkdst"]) == ("file", 60, None)
    assert stat.S_ISREG(hard["mode"])


@pytest.mark.corpus
def test_checksums_and_suids(report: dict) -> None:
    truth = ground_truth(IMAGE)
    sums = {algo: base(report, "file_checksums", f"files.{algo}sums") for algo in ("sha256", "md5", "sha1")}
    for path, t in truth.items():
        for algo, table in sums.items():
            expected = t[algo] if t["type"] in ("file", "hardlink") else "DIRECTORY_OR_OTHER"
            assert table[path] == expected, (algo, path)
    suids = base(report, "file_suids", "files.suids")
    assert suids == {p: oct(int(t["mode"], 8)) for p, t in truth.items() if int(t["mode"], 8) & stat.S_ISUID}
    assert suids["/usr/local/bin/orders-suid-helper"] == "0o4755"


@pytest.mark.corpus
def test_secret_search_keys_and_lines(report: dict) -> None:
    a = analysis(IMAGE)
    matches = {path: json.loads(v) for path, v in base(report, "secret_search", "regexp_matches.all").items()}
    specs = {f"{r.id}={r.pattern}" for r in a.rules if r.kind == "secret"}
    for keys in matches.values():
        for key, lines in keys.items():
            assert key.endswith("\n") and all(len(chunk) <= 76 for chunk in key.split("\n"))
            assert key == base64.encodebytes(base64.b64decode(key)).decode()
            assert base64.b64decode(key).decode() in specs
            assert lines == sorted(lines) and all(isinstance(n, int) for n in lines)
    # The example export's exact key for Anchore's PRIV_KEY rule, at 0-based line 0.
    example_key = next(
        iter(
            json.loads(
                next(
                    iter(example_imagedata()["analysis_report"]["secret_search"]["regexp_matches.all"]["base"].values())
                )
            )
        )
    )
    assert matches["/root/.ssh/id_rsa"][example_key] == [0]
    for s in answers(IMAGE)["secrets"]:
        assert any(s["line"] - 1 in lines for lines in matches[s["path"]].values()), s["path"]
    assert "content_search" not in report  # not configured


@pytest.mark.corpus
def test_retrieve_files_is_the_final_passwd(report: dict) -> None:
    content = base64.b64decode(base(report, "retrieve_files", "file_content.all")["/etc/passwd"])
    assert hashlib.sha256(content).hexdigest() == ground_truth(IMAGE)["/etc/passwd"]["sha256"]
    assert b"appuser:x:1000" in content


@pytest.mark.corpus
def test_policy_engine_loader_reads_it(export: list) -> None:
    """What ImageLoader.load() reads (anchore-format.md §6), read the same way."""
    data = export[0]["image"]["imagedata"]
    ir, ar = data["image_report"], data["analysis_report"]
    assert ir["meta"]["imageId"] == export[0]["image"]["imageId"]
    int(ir["meta"]["sizebytes"])
    for key in ("docker_data", "docker_history", "dockerfile_contents", "dockerfile_mode", "layers", "familytree"):
        assert key in ir
    meta = ar["analyzer_meta"]["analyzer_meta"]["base"]
    assert all(isinstance(meta[k], str) for k in ("DISTRO", "DISTROVERS", "LIKEDISTRO"))
    packages = ar["package_list"]
    assert isinstance(packages, dict)
    for element, body in packages.items():
        # An empty allinfo sends the loader to a pkgs.all branch; an empty pkgs.<x> ends its generic loop.
        assert body["base"], f"{element} is empty"
    for name, value in packages.get("pkgs.allinfo", {}).get("base", {}).items():
        info = json.loads(value) if isinstance(value, str) else value
        assert isinstance(info["sourcepkg"], str) and isinstance(info["version"], str), name
        assert isinstance(info["size"], str), name
    for element in ("pkgs.npms", "pkgs.gems"):
        for value in packages.get(element, {}).get("base", {}).values():
            assert isinstance(value["versions"], list) and isinstance(value["lics"], list)
            assert isinstance(value["origins"], list)
    for value in packages.get("pkgs.java", {}).get("base", {}).values():
        assert isinstance(value["metadata"], dict) and "groupId=" in value["metadata"]["pom.properties"]
    nuget = packages["pkgs.nuget"]["base"]  # ours: the pkgs.npms shape plus the generic loader's keys
    assert {v["name"] for v in nuget.values()} == {"Orders.Api", "Dapper", "Newtonsoft.Json", "Serilog"}
    for value in nuget.values():
        assert isinstance(value["versions"], list) and isinstance(value["lics"], list)
        assert isinstance(value["origins"], list) and isinstance(value["sourcepkg"], str)
        for key in ("name", "version", "type", "license", "origin"):
            assert isinstance(value[key], str), key
    allinfo = ar["file_list"]["files.allinfo"]["base"]
    for value in allinfo.values():
        info = json.loads(value)
        for key in ALLINFO_REQUIRED:
            info[key]
    for matches in ar["secret_search"]["regexp_matches.all"]["base"].values():
        assert isinstance(json.loads(matches), dict)
    for content in ar["retrieve_files"]["file_content.all"]["base"].values():
        base64.b64decode(content)


def test_rule_key_encoding_matches_anchore() -> None:
    from layerscan.scan.rules import parse_anchore_rule

    rule = parse_anchore_rule(r"PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+")
    assert rule_key(rule) == "UFJJVl9LRVk9KD9pKS0rQkVHSU4oLiopUFJJVkFURSBLRVktKw==\n"
    long = parse_anchore_rule("API_KEY=(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*")
    key = rule_key(long)
    assert key.count("\n") == 2 and len(key.split("\n")[0]) == 76


# ----------------------------------------------------------------------------- layerscan JSON


@pytest.mark.corpus
def test_native_json_shape(native_doc: dict) -> None:
    a = analysis(IMAGE)
    assert list(native_doc) == ["schema", "image", "distro", "files", "packages", "secrets", "stats"]
    assert native_doc["schema"] == "layerscan/v1"
    image = native_doc["image"]
    assert image["manifest_digest"] == a.manifest_digest and image["config_digest"] == a.config_digest
    assert (image["architecture"], image["os"]) == ("amd64", "linux")
    layers = answers(IMAGE)["layers"]
    assert [
        (la["index"], la["digest"], la["diff_id"], la["media_type"], la["size"], la["entries"])
        for la in image["layers"]
    ] == [(la["index"], la["digest"], la["diff_id"], la["mediaType"], la["size"], la["tar_entries"]) for la in layers]
    assert native_doc["distro"] == {"id": "debian", "version_id": "12", "id_like": ""}
    paths = [f["path"] for f in native_doc["files"]]
    assert paths == sorted(paths) and len(paths) == len(ground_truth(IMAGE))
    keys = ["path", "type", "mode", "uid", "gid", "size", "mtime", "link", "layer", "md5", "sha1", "sha256"]
    assert all(list(f) == keys for f in native_doc["files"])
    assert all(
        set(s) == {"rule", "kind", "path", "line", "layer", "in_final_image", "match"} for s in native_doc["secrets"]
    )
    assert isinstance(native_doc["packages"], list) and isinstance(native_doc["stats"], dict)


@pytest.mark.corpus
def test_native_json_package_metadata(native_doc: dict) -> None:
    """Each ecosystem's typed metadata as an object of its fields: fields that do not apply
    are left out, pom.properties keys are written as the file names them."""
    by_type: dict[str, list[dict]] = {}
    for p in native_doc["packages"]:
        by_type.setdefault(p["type"], []).append(p)
    assert set(by_type) == {"dpkg", "npm", "java", "python", "nuget", "gem"}
    assert all(list(p)[-1] == "metadata" for p in native_doc["packages"])
    dpkg = by_type["dpkg"][0]["metadata"]
    assert list(dpkg) == ["installed_size", "maintainer", "status", "depends", "pre_depends", "provides", "files"]
    assert list(dpkg["files"][0]) == ["path", "digest", "is_config_file"]
    poms = [p["metadata"]["pom_properties"] for p in by_type["java"] if "pom_properties" in p["metadata"]]
    assert poms and all(list(pom) == ["groupId", "artifactId", "version"] for pom in poms)
    for p in by_type["nuget"]:  # deps.json libraries: no nuspec, packages.config or lock fields
        assert list(p["metadata"]) == ["kind", "sha512", "path", "hash_path", "dependencies"]
    locked = [p["metadata"] for p in by_type["npm"] if "dev" in p["metadata"]]
    unlocked = [p["metadata"] for p in by_type["npm"] if "dev" not in p["metadata"]]
    assert locked and unlocked
    assert all("resolved" not in m and "integrity" not in m for m in unlocked)
    assert all("direct_url" not in p["metadata"] for p in by_type["python"])  # no VCS origin in the image


class _Recorder(io.StringIO):
    largest = 0

    def write(self, s: str) -> int:
        self.largest = max(self.largest, len(s))
        return super().write(s)


@pytest.mark.corpus
@pytest.mark.parametrize("fmt", ["json", "anchore"])
def test_reports_are_streamed(fmt: str) -> None:
    out = _Recorder()
    FORMATS[fmt](analysis(IMAGE), out)
    total = len(out.getvalue())
    assert total > 1_000_000
    assert out.largest < total / 10  # one record at a time (a package with its files at most), never the document


@pytest.mark.corpus
def test_no_secret_value_in_any_report() -> None:
    texts = {fmt: render(fmt) for fmt in FORMATS}
    for s in answers(IMAGE)["secrets"]:
        for fmt, text in texts.items():
            assert s["value"] not in text, (fmt, s["path"])


# ----------------------------------------------------------------------------- table


@pytest.mark.corpus
def test_table_summary() -> None:
    text = render("table")
    a = analysis(IMAGE)
    assert re.search(rf"^Files +{len(a.files)} ", text, re.M)
    assert re.search(r"^Layers +5$", text, re.M)
    assert re.search(r"^Secrets +\d+ in the final image, 0 in deleted", text, re.M)
    for rule in ("aws-access-key-id", "github-pat", "private-key", "docker-config-auth", "generic-api-key"):
        assert re.search(rf"^  {rule} +\d+$", text, re.M), rule
    assert re.search(r"^Packages +\d+", text, re.M)
    assert re.search(r"^Time +[\d.]+ s, .* [\d.]+ MB/s$", text, re.M)
    assert "/root/.ssh/id_rsa:1" in text


# ------------------------------------------------- as Anchore Engine's analyzer writes it
# Unit tests of what the engine comparison (test_anchore_engine.py) showed; the expected
# values are the engine's own output (docs/anchore-compat.md).


def _record(path: str, kind: str = "file", *, size: int = 0, link: str | None = None, mode: int = 0o644) -> FileRecord:
    digest = "0" * 32 if kind == "file" else None
    return FileRecord(path, kind, mode, 0, 0, "root", "root", size, 0, link, digest, digest, digest)


def _files(*records: FileRecord, layers: dict[str, int] | None = None) -> ImageFiles:
    layers = layers or {}
    return ImageFiles.of({r.path: FinalFile(r, layers.get(r.path, 0)) for r in sorted(records)}, {})


def test_sizebytes_is_the_size_of_the_engines_squashed_tar() -> None:
    """Anchore's squash sets pax_headers["path"] on every member, so tarfile writes a PAX
    header before each entry; the size is that of the tar tarfile writes."""
    long_name = "opt/" + "n" * 120
    records = [
        _record("/etc", "dir", mode=0o755),
        _record("/etc/passwd", size=700),
        _record("/etc/link", "symlink", link="/" + "t" * 150, mode=0o777),
        _record("/" + long_name, size=10),
        _record("/caf\u00e9", size=1),
        # path records of 95 to 106 bytes: their length's own digits go from two to three
        *(_record(f"/opt/{'m' * k}") for k in range(84, 96)),
    ]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for r in records:
            info = tarfile.TarInfo(r.path.lstrip("/"))
            info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE}[r.type]
            info.size, info.linkname, info.uname, info.gname = r.size, r.link or "", "root", "root"
            info.pax_headers["path"] = info.name
            tar.addfile(info, io.BytesIO(b"x" * r.size) if r.type == "file" else None)
    assert squashed_tar_size(_files(*records)) == len(out.getvalue())


def test_othernames_are_merged_as_the_engine_merges_them() -> None:
    """debian-minbase's alternatives, as Anchore Engine's analyzer writes them: links to
    one target share their names; a link to a link gets its target's names."""
    files = _files(
        _record("/etc/alternatives/awk.1.gz", "symlink", link="/usr/share/man/man1/mawk.1.gz"),
        _record("/etc/alternatives/nawk.1.gz", "symlink", link="/usr/share/man/man1/mawk.1.gz"),
        _record("/etc/alternatives/pager", "symlink", link="/bin/more"),
        _record("/usr/bin/pager", "symlink", link="/etc/alternatives/pager"),
        _record("/usr/bin/mawk"),
        _record("/app/start.js", "symlink", link="server.js"),
    )
    names = {path: set(n) for path, n in othernames(files).items()}
    awk = {"/etc/alternatives/awk.1.gz", "/etc/alternatives/nawk.1.gz", "/usr/share/man/man1/mawk.1.gz"}
    pager = {"/bin/more", "/etc/alternatives/pager", "/usr/bin/pager"}
    assert names == {
        "/etc/alternatives/awk.1.gz": awk,
        "/etc/alternatives/nawk.1.gz": awk,
        "/etc/alternatives/pager": pager,
        "/usr/bin/pager": pager,
        "/usr/bin/mawk": {"/usr/bin/mawk"},
        "/app/start.js": {"/app/start.js", "server.js"},  # the relative-link quirk
    }
    written = io.StringIO()
    dump(file_list(files), written)
    pager_info = json.loads(json.loads(written.getvalue())["files.allinfo"]["base"]["/usr/bin/pager"])
    assert pager_info["othernames"] == dict.fromkeys(["/usr/bin/pager", "/etc/alternatives/pager", "/bin/more"], True)


def test_othernames_follow_the_order_of_the_layers() -> None:
    """The merge is one pass in squashed-tar order: a target a later layer writes gets the
    names of the links to it, which do not see each other; one written first keeps its
    own name only, and the links share theirs."""
    links = [_record(p, "symlink", link="/t") for p in ("/a", "/b")]
    target = _record("/t")
    upper_target = othernames(_files(*links, target, layers={"/t": 1}))
    assert set(upper_target["/t"]) == {"/t", "/a", "/b"}
    assert set(upper_target["/a"]) == {"/a", "/t"}
    lower_target = othernames(_files(*links, target, layers={"/a": 1, "/b": 1}))
    assert set(lower_target["/t"]) == {"/t"}
    assert set(lower_target["/a"]) == {"/a", "/t", "/b"}


def _dpkg(name: str, source: str = "") -> Package:
    md5sums = (DpkgFile(f"/usr/bin/{name}", FileDigest("md5", "0" * 32), False),)
    # .list also names directories and symlinks; md5sums and conffiles name files only.
    listed = ("/usr", "/usr/bin", f"/usr/bin/{name}", f"/usr/bin/{name}-alias")
    return Package(
        "dpkg",
        name,
        "1.0-1",
        "/var/lib/dpkg/status",
        source=source,
        source_version="1.0-1",
        files=listed,
        metadata=DpkgMetadata(files=md5sums),
    )


def test_pkgfiles_all_is_the_package_databases_file_records() -> None:
    rpm_file = RpmFile("/etc/tiny", 0o40755, 0, None, "root", "root", 0)  # a directory rpm lists
    rpm = Package("rpm", "tiny", "1-1", "/var/lib/rpm/rpmdb.sqlite", files=(), metadata=RpmMetadata(files=(rpm_file,)))
    out = os_package_list([_dpkg("tool"), rpm], None)
    assert out["pkgfiles.all"] == {"/usr/bin/tool": "DPKGFILE", "/etc/tiny": "RPMFILE"}


def test_apk_files_include_the_databases_directories() -> None:
    """Syft lists an apk's F: directories among its files; pkgfilemeta has files only."""
    files = (
        ApkFile("/etc", None, 0, 0, 0o755, True),
        ApkFile("/etc/motd", None, 0, 0, 0o644, False),
    )
    apk = Package(
        "apk",
        "alpine-baselayout",
        "3.4.3-r1",
        "/lib/apk/db/installed",
        files=("/etc/motd",),
        metadata=ApkMetadata(files=files),
    )
    out = os_package_list([apk], None)
    assert out["pkgfiles.all"] == {"/etc": "APKFILE", "/etc/motd": "APKFILE"}
    assert out["pkgs.allinfo"]["alpine-baselayout"]["files"] == ["/etc", "/etc/motd"]
    assert list(pkgfilemeta([apk])) == ["/etc/motd"]


def test_pkgs_plus_source_has_apk_origins_only() -> None:
    """The engine reads Syft's originPackage, which dpkg packages do not have."""
    apk = Package("apk", "libssl3", "3.1.4-r0", "/lib/apk/db/installed", source="openssl", metadata=ApkMetadata())
    deb = os_package_list([_dpkg("tool", source="tools")], None)
    assert deb["pkgs_plus_source.all"] == {"tool": "1.0-1"}
    alpine = os_package_list([apk], None)
    assert alpine["pkgs_plus_source.all"] == {"libssl3": "3.1.4-r0", "openssl": "3.1.4-r0"}


def test_pkgs_binary_is_written_empty_unless_it_would_hide_a_generic_element() -> None:
    assert package_list([_dpkg("tool")], None)["pkgs.binary"] == {"base": {}}
    nuget = Package("nuget", "Newtonsoft.Json", "13.0.1", "/app/app.deps.json", metadata=NugetMetadata())
    out = package_list([_dpkg("tool"), nuget], None)
    assert "pkgs.binary" not in out and out["pkgs.nuget"]["base"]


def test_npm_origins_are_the_author_alone() -> None:
    doc = {
        "name": "bytes",
        "version": "3.1.2",
        "author": {"name": "TJ Holowaychuk", "email": "tj@vision-media.ca", "url": "http://tjholowaychuk.com"},
        "contributors": ["Jed Watson <jed.watson@me.com>"],
    }
    entry = library_entry(npm.to_package(doc, "/app/node_modules/bytes/package.json", {}))
    assert entry is not None
    assert entry[2]["origins"] == ["TJ Holowaychuk <tj@vision-media.ca> (http://tjholowaychuk.com)"]
    no_author = npm.to_package({"name": "accepts", "contributors": ["Jonathan Ong"]}, "/p/package.json", {})
    assert library_entry(no_author)[2]["origins"] == []  # type: ignore[index]


def test_java_entries_as_the_engines_handler_writes_them() -> None:
    """Keyed by Syft's virtual path (a bundled pom.properties apart, with its group); the
    manifest's named sections merged in the order of their names, as Syft 0.x hands them
    over; at a shared key the package Syft lists first (by name, then version)."""

    def pom(group: str, artifact: str, version: str) -> bytes:
        return f"groupId={group}\nartifactId={artifact}\nversion={version}\n".encode()

    mf = (
        b"Manifest-Version: 1.0\n\nName: z/\nImplementation-Version: 1.0-z\n\nName: a/\nImplementation-Version: 1.0-a\n"
    )
    members = {
        "META-INF/MANIFEST.MF": mf,
        "META-INF/maven/org.example/shaded/pom.properties": pom("org.example", "shaded", "1.0"),
        "a/pom.properties": pom("com.google.guava", "guava", "29.0"),  # cataloged first, by path
        "b/pom.properties": pom("com.google.guava", "guava", "28.0"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    found = JavaCataloger().catalog_archive(buf.getvalue(), "/opt/shaded-1.0.jar")
    java = package_list([p for p in found if isinstance(p, Package)], None)["pkgs.java"]["base"]
    assert set(java) == {"/opt/shaded-1.0.jar", "/opt/shaded-1.0.jar:com.google.guava:guava"}
    shaded, guava = java["/opt/shaded-1.0.jar"], java["/opt/shaded-1.0.jar:com.google.guava:guava"]
    assert (shaded["name"], shaded["implementation-version"], shaded["maven-version"]) == ("shaded", "1.0-z", "1.0")
    assert (guava["maven-version"], guava["location"], guava["type"]) == (
        "28.0",
        "/opt/shaded-1.0.jar:com.google.guava:guava",
        "java-jar",
    )


def test_python_entries_as_the_engines_handler_writes_them() -> None:
    site = "/usr/local/lib/python3.11/site-packages"
    files = (f"{site}/flask/app.py", "/usr/local/bin/flask")

    def entry(declared: str, top_level: tuple[str, ...]) -> tuple[str, str, dict]:
        p = Package(
            "python",
            python.normalize(declared),
            "1.0",
            f"{site}/{declared}-1.0.dist-info/METADATA",
            files=files,
            metadata=PythonMetadata(name=declared, site_packages=site, top_level=top_level),
        )
        out = library_entry(p)
        assert out is not None
        return out

    _, key, value = entry("Flask", ())
    assert (key, value["name"]) == (f"{site}/Flask", "Flask")
    # RECORD's paths joined to site-packages, not normalized.
    assert value["files"] == [f"{site}/flask/app.py", f"{site}/../../../bin/flask"]
    assert entry("MarkupSafe", ("markupsafe",))[1] == f"{site}/markupsafe"  # not a substring
    assert entry("attrs", ("attr", "attrs"))[1] == f"{site}/attrs"  # the last top-level name decides
    assert entry("PyYAML", ("_yaml", "yaml"))[1] == f"{site}/yaml"
