"""The columnar file table: squash against a plain model of the layering rules on generated
layers, the table's record view, its codec round trip, and the writers' JSON text against
json.dumps of the same values."""

from __future__ import annotations

import io
import json
import posixpath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscan.catalog import capture_globs
from layerscan.filetree import FinalFile, ImageFiles
from layerscan.report.anchore.files import allinfo, file_checksums, file_list, othernames
from layerscan.report.jsonstream import Arr, EncodedArr, EncodedObj, Obj, dump, string
from layerscan.scan import scan_layer
from layerscan.scan.globs import GlobSet
from layerscan.scan.model import Captured, FileRecord, LayerResult, Mark, Marker, ScanOptions
from layerscan.scan.native import glob_filter
from layerscan.squash import squash
from layerscan.store.results import codec
from tarbuilder import Entry, build, opaque, whiteout

ENGINE = "native"
# Every file captured; ELF files marked, so squash carries marks like contents.
CAPTURE = ScanOptions(capture_globs=("/**",), markers=(Marker(b"\x7fELF", 8),))
NAMES = ["a", "b", "a/b", "a/c", "a/b/c", "b/x", "c", "é", "a/é", "long/" + "n" * 120]


def _below(path: str) -> str:
    return path.rstrip("/") + "/"


def model(
    results: list[LayerResult],
) -> tuple[dict[str, FinalFile], dict[str, Captured], dict[str, tuple[Mark, ...]]]:
    """The layering rules written out directly: path -> FinalFile, path -> content and
    path -> marks."""
    state: dict[str, FinalFile] = {}
    content: dict[str, tuple[int, str]] = {}

    def drop_below(path: str) -> None:
        for p in [p for p in state if p.startswith(_below(path))]:
            del state[p]
            content.pop(p, None)

    for layer, result in enumerate(results):
        for w in result.whiteouts:
            drop_below(w.path)
            if not w.opaque:
                state.pop(w.path, None)
                content.pop(w.path, None)
        for rec in result.entries:
            if rec.path == "/":
                continue
            if rec.type != "dir":
                drop_below(rec.path)
            source = None
            if rec.type == "file":
                source = (layer, rec.path)
            elif rec.type == "hardlink":  # the target as it is now (it may be this very path)
                target = state.get(rec.link or "")
                if target is not None and target.record.type in ("file", "hardlink") and target.record.sha256:
                    t = target.record
                    rec = rec._replace(size=t.size, md5=t.md5, sha1=t.sha1, sha256=t.sha256)
                    source = content.get(rec.link or "")
            content.pop(rec.path, None)
            if source is not None:
                content[rec.path] = source
            state[rec.path] = FinalFile(rec, layer)
    captured = {p: results[i].captured[src] for p, (i, src) in content.items() if src in results[i].captured}
    marks = {p: results[i].marks[src] for p, (i, src) in content.items() if results[i].marks.get(src)}
    return state, captured, marks


def entry(kind: str, name: str, data: bytes, target: str) -> Entry:
    if kind == "file":
        return Entry(name, "file", data=data)
    if kind == "dir":
        return Entry(name, "dir", mode=0o755)
    if kind == "symlink":
        return Entry(name, "symlink", link=target)
    if kind == "hardlink":
        return Entry(name, "hardlink", link=target)
    if kind == "whiteout":
        return whiteout(name)
    return opaque(name)


entries = st.lists(
    st.builds(
        entry,
        st.sampled_from(["file", "file", "dir", "symlink", "hardlink", "whiteout", "opaque"]),
        st.sampled_from(NAMES),
        st.binary(max_size=8) | st.sampled_from([b"\x7fELF-1", b"\x7fELF-2"]),
        st.sampled_from([*NAMES, "../a", "/b", "missing"]),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries, min_size=1, max_size=4))
def test_squash_equals_the_model(layers: list[list[Entry]]) -> None:
    results = [scan_layer(build(layer), CAPTURE, engine=ENGINE) for layer in layers]
    files = squash(results)
    state, captured, marks = model(results)
    assert dict(files.files) == state
    assert files.paths == sorted(state)
    assert files.captured == captured
    assert files.marks == marks
    assert ImageFiles.of(files.files, files.captured, files.too_big_to_capture, files.marks) == files


def _weird_image() -> ImageFiles:
    """Names JSON must escape, long and non-ASCII names and links, every record kind."""
    layer = [
        Entry("dir", "dir", mode=0o755),
        Entry('dir/q"uote\\back', "file", data=b"1", mode=0o4755),
        Entry("dir/\u00e9t\u00e9", "file", data=b"22"),
        Entry("dir/ctl\x01\t", "file", data=b""),
        Entry("dir/rel", "symlink", link="../dir/\u00e9t\u00e9"),
        Entry("dir/abs", "symlink", link="/dir/rel"),
        Entry("dir/empty", "symlink", link=""),
        Entry("dir/hard", "hardlink", link='dir/q"uote\\back'),
        Entry("dir/gone", "hardlink", link="nowhere"),
        Entry("dev/c", "char", devmajor=1, devminor=3),
        Entry("d" * 150 + "/f", "file", data=b"x"),
    ]
    return squash([scan_layer(build(layer), CAPTURE, engine=ENGINE)])


def _old_allinfo(r: FileRecord, names: dict[str, bool]) -> dict:
    """files.allinfo as a dict, as Anchore's get_files_from_squashtar builds it, with the
    row's merged othernames."""
    mask = {"file": 0o100000, "hardlink": 0o100000, "dir": 0o40000, "symlink": 0o120000, "char": 0o20000}
    kind = {"file": "file", "hardlink": "file", "dir": "dir", "symlink": "slink", "char": "dev"}
    linkdst = full = None
    size = r.size
    if r.type == "symlink":
        linkdst = r.link or ""
        size = len(linkdst)
        full = linkdst if linkdst.startswith("/") else posixpath.normpath(posixpath.join(linkdst, r.path))
    return {
        "name": r.path,
        "fullpath": r.path,
        "size": size,
        "mode": mask.get(r.type, 0) | (r.mode & 0o7777),
        "uid": r.uid,
        "gid": r.gid,
        "linkdst": linkdst,
        "linkdst_fullpath": full,
        "type": kind.get(r.type, "UNKNOWN"),
        "othernames": names,
    }


def test_allinfo_text_is_json_dumps_of_the_record() -> None:
    files = _weird_image()
    names = othernames(files)
    for i, path in enumerate(files.paths):
        assert allinfo(files, i, names[path]) == json.dumps(_old_allinfo(files.files[path].record, names[path])), path


def test_file_analyzers_are_json_dumps_of_their_values() -> None:
    files = _weird_image()
    for part in (file_list(files), file_checksums(files)):
        out = io.StringIO()
        dump(part, out)
        text = out.getvalue()
        assert json.dumps(json.loads(text)) == text
    out = io.StringIO()
    dump(file_checksums(files), out)
    sums = json.loads(out.getvalue())["files.md5sums"]["base"]
    for path, entry in files.files.items():
        assert sums[path] == (entry.record.md5 or "DIRECTORY_OR_OTHER")


@given(st.lists(st.tuples(st.text(), st.one_of(st.none(), st.integers(), st.text())), max_size=600))
def test_encoded_nodes_write_what_obj_and_arr_write(items: list[tuple[str, int | str | None]]) -> None:
    def text(value: Obj | Arr | EncodedObj | EncodedArr) -> str:
        out = io.StringIO()
        dump(value, out)
        return out.getvalue()

    members = [f"{string(k)}: {json.dumps(v)}" for k, v in items]
    assert text(EncodedObj(iter(members))) == text(Obj(iter(items)))
    assert text(EncodedArr(json.dumps(v) for _, v in items)) == text(Arr(v for _, v in items))


def test_the_table_goes_through_the_result_cache_codec_as_columns() -> None:
    files = _weird_image()
    w = codec._Writer()
    codec._put_record(w, ImageFiles, files)
    back = codec._get_record(codec._Reader(w.table() + b"".join(w.parts)), ImageFiles)
    assert back == files and dict(back.files) == dict(files.files)


def test_native_glob_filter_is_globset_matches_over_every_path() -> None:
    paths = [
        f"/{a}/{b}"
        for a in ("usr/lib/python3/dist-packages/x", "app/node_modules/y", "var/lib/dpkg")
        for b in ("METADATA", "package.json", "status", "x.jar", "a.py", "RECORD", "installed", "x.gemspec", "")
    ]
    for globs in (capture_globs(), (*capture_globs(), "/app/*"), ("/**/package.json",)):
        s = GlobSet(globs)
        assert glob_filter(globs, paths) == [p for p in paths if s.matches(p)]
