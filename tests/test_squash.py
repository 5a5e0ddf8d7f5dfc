"""squash() edge cases: layers built as real tars, scanned by each engine, then squashed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from layerscan.filetree import ImageFiles, SymlinkLoop
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, ScanOptions
from layerscan.squash import squash
from tarbuilder import Entry, build, opaque, whiteout

ENGINES = ["reference", "native"]
CAPTURE = ScanOptions(capture_globs=("/**",))


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def layer(engine: str, *entries: Entry) -> LayerResult:
    return scan_layer(build(entries), CAPTURE, engine=engine)


def image(engine: str, *layers: Sequence[Entry]) -> ImageFiles:
    return squash([layer(engine, *entries) for entries in layers])


def d(path: str, **kw: object) -> Entry:
    return Entry(path, "dir", mode=0o755, **kw)  # type: ignore[arg-type]


def f(path: str, data: bytes = b"x", **kw: object) -> Entry:
    return Entry(path, "file", data=data, **kw)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layers_of(files: ImageFiles) -> dict[str, int]:
    return {p: e.layer for p, e in files.files.items()}


def test_directory_replaced_by_file_loses_its_children(engine: str) -> None:
    files = image(engine, [d("a"), f("a/b"), d("a/c"), f("a/c/d"), f("ab")], [f("a", b"now a file")])
    assert layers_of(files) == {"/a": 1, "/ab": 0}
    assert files.files["/a"].record.type == "file"
    assert files.read("/a") == b"now a file"


def test_file_replaced_by_directory(engine: str) -> None:
    files = image(engine, [f("a"), f("b")], [d("a"), f("a/x", b"in")])
    assert layers_of(files) == {"/a": 1, "/a/x": 1, "/b": 0}
    assert files.files["/a"].record.type == "dir"


def test_a_file_replaced_by_a_non_directory_drops_what_was_below_an_implicit_directory(engine: str) -> None:
    # Layer 1 has a/b/c with no entry for a/b: replacing or whiting out a still takes it.
    files = image(engine, [f("a")], [f("a/b/c")], [f("a", b"again")])
    assert layers_of(files) == {"/a": 2}
    files = image(engine, [d("a")], [f("a/b/c")], [whiteout("a")])
    assert len(files) == 0


def test_whiteout_removes_the_lower_subtree_but_not_its_own_layer(engine: str) -> None:
    lower = [d("w"), f("w/old"), d("w/sub"), f("w/sub/deep"), f("wx")]
    files = image(engine, lower, [whiteout("w"), d("w"), f("w/new")])
    assert layers_of(files) == {"/w": 1, "/w/new": 1, "/wx": 0}
    # Whiteout listed after the entry it would hide: order within a layer does not matter.
    files = image(engine, lower, [f("w/new"), whiteout("w")])
    assert layers_of(files) == {"/w/new": 1, "/wx": 0}


def test_whiteout_of_nothing_and_whiteout_then_recreate(engine: str) -> None:
    files = image(engine, [f("keep")], [whiteout("nothing/here"), whiteout("missing")], [f("missing")])
    assert layers_of(files) == {"/keep": 0, "/missing": 2}


def test_opaque_directory_keeps_itself_and_its_own_layer(engine: str) -> None:
    files = image(engine, [d("o", uid=7), f("o/a"), d("o/s"), f("o/s/b")], [opaque("o"), f("o/c")])
    assert layers_of(files) == {"/o": 0, "/o/c": 1}
    assert files.files["/o"].record.uid == 7


def test_opaque_directory_under_a_deleted_parent(engine: str) -> None:
    base = [d("p"), d("p/q"), f("p/q/old"), f("p/r")]
    files = image(engine, base, [whiteout("p")], [opaque("p/q"), f("p/q/new")])
    assert layers_of(files) == {"/p/q/new": 2}
    # The same in one layer: the whiteout hides the lower p, the opaque marker hides nothing more.
    files = image(engine, base, [whiteout("p"), d("p"), d("p/q"), opaque("p/q"), f("p/q/new")])
    assert layers_of(files) == {"/p": 1, "/p/q": 1, "/p/q/new": 1}


def test_same_path_twice_in_one_layer_last_wins(engine: str) -> None:
    files = image(engine, [f("dup", b"first", mode=0o600), f("dup", b"second", mode=0o640), d("x"), f("x", b"file")])
    dup = files.files["/dup"].record
    assert (dup.mode, dup.sha256, dup.size) == (0o640, sha(b"second"), 6)
    assert files.read("/dup") == b"second"
    assert files.files["/x"].record.type == "file"


def test_root_entry_is_not_in_the_table(engine: str) -> None:
    files = image(engine, [Entry("./", "dir"), Entry("./etc/", "dir"), f("./etc/hosts")])
    assert set(files) == {"/etc", "/etc/hosts"}


def test_hardlink_carries_its_target_content(engine: str) -> None:
    files = image(engine, [f("t", b"target", mode=0o755)], [Entry("l", "hardlink", link="t", mode=0o700)])
    link = files.files["/l"]
    assert (link.layer, link.record.type, link.record.link) == (1, "hardlink", "/t")
    assert (link.record.size, link.record.sha256, link.record.mode) == (6, sha(b"target"), 0o700)
    assert files.read("/l") == b"target"


@pytest.mark.parametrize("later", ["deleted", "replaced"])
def test_hardlink_keeps_the_content_of_a_target_deleted_or_replaced_later(engine: str, later: str) -> None:
    top = [whiteout("t")] if later == "deleted" else [f("t", b"new content")]
    files = image(engine, [f("t", b"old content"), Entry("l", "hardlink", link="t")], top)
    assert files.files["/l"].record.sha256 == sha(b"old content")
    assert files.read("/l") == b"old content"
    assert ("/t" in files) == (later == "replaced")


def test_hardlink_to_a_hardlink_and_to_nothing(engine: str) -> None:
    files = image(
        engine,
        [
            f("t", b"abc"),
            Entry("l1", "hardlink", link="t"),
            Entry("l2", "hardlink", link="l1"),
            Entry("dangling", "hardlink", link="nowhere"),
        ],
    )
    assert files.files["/l2"].record.sha256 == sha(b"abc")
    assert files.files["/dangling"].record.sha256 is None
    assert files.read("/dangling") is None


def test_symlinks_stay_links_and_loops_stop(engine: str) -> None:
    files = image(
        engine,
        [
            f("real", b"r"),
            Entry("s", "symlink", link="real"),
            Entry("loop1", "symlink", link="/loop2"),
            Entry("loop2", "symlink", link="loop1"),
            Entry("self", "symlink", link="self/x"),
        ],
    )
    assert files.files["/s"].record.type == "symlink" and files.files["/s"].record.link == "real"
    assert files.read("/s") == b"r"
    for path in ("/loop1", "/loop2/x", "/self"):
        with pytest.raises(SymlinkLoop):
            files.resolve(path)
        assert files.read(path) is None


def test_resolve_follows_a_link_above_a_path_that_is_itself_a_row(engine: str) -> None:
    # One layer may write "d/x" after making "d" a link: the row "/d/x" is then reached through the link.
    files = image(
        engine,
        [f("real/x", b"through the link"), Entry("d", "symlink", link="real"), f("d/x", b"own row"), f("plain", b"p")],
    )
    assert "/d/x" in files
    assert files.resolve("/d/x") == "/real/x" and files.read("/d/x") == b"through the link"
    assert files.resolve("/plain") == "/plain" and files.resolve("/real/./x") == "/real/x"
    assert files.resolve("/real//x") == "/real/x" and files.resolve("/d/../plain") == "/plain"
    assert files.resolve("/real/x/") == "/real/x" and files.resolve("/nowhere") is None


def test_missing_layer_is_skipped_and_a_layer_used_twice_applies_twice(engine: str) -> None:
    base = layer(engine, f("a", b"1"), f("b", b"1"))
    mid = layer(engine, f("a", b"2"), whiteout("b"))
    files = squash([base, None, mid, base])
    assert layers_of(files) == {"/a": 3, "/b": 3}
    assert files.read("/a") == b"1"


def test_captured_only_from_the_layer_that_last_wrote_the_file(engine: str) -> None:
    lower = layer(engine, f("cfg", b"captured"), f("other", b"o"))
    upper = scan_layer(build([f("cfg", b"not captured")]), ScanOptions(), engine=engine)
    files = squash([lower, upper])
    assert files.read("/cfg") is None
    assert files.read("/other") == b"o"
