"""scan/rulecache.py: the rules' Hyperscan database saved by one process and loaded by the next,
trusted only where nobody else can write it and only with the bytes it was saved with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerscan import _scan
from layerscan.config import Config
from layerscan.pipeline import scan_options
from layerscan.scan import native, rulecache, scan_layer
from tarbuilder import Entry, build

OPTIONS = scan_options(Config(), Config().secret_rules)
PATTERNS = tuple(r.pattern for r in OPTIONS.rules)
LAYER = build(
    [
        Entry("etc/app.env", "file", data=b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLF\n"),
        Entry(
            "root/.ssh/id_rsa", "file", data=b"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
        ),
        Entry("srv/token", "file", data=b"token: ghp_" + b"a1B2" * 9 + b"\n"),
    ]
)


@pytest.fixture
def fresh() -> Iterator[None]:
    """No database of this process's own: the next scan takes the one prepare() gives it."""
    native._rule_dbs.clear()
    yield
    native._rule_dbs.clear()


def test_a_saved_database_is_loaded_by_the_next_process_and_scans_the_same(fresh: None, tmp_path: Path) -> None:
    compiled = scan_layer(LAYER, OPTIONS)
    assert compiled.secrets, "the layer holds secrets for the database to find"
    native._rule_dbs.clear()
    native.prepare(OPTIONS, tmp_path / "hs")  # compiles and saves
    (saved,) = (tmp_path / "hs").iterdir()
    assert (tmp_path / "hs").stat().st_mode & 0o777 == 0o700
    native._rule_dbs.clear()  # a new process, as far as the cache goes
    loaded = rulecache.load(tmp_path / "hs", PATTERNS)
    assert loaded is not None and loaded.always == _scan.compile_rules(PATTERNS).always
    native.prepare(OPTIONS, tmp_path / "hs")
    assert native._rule_dbs[PATTERNS] is not None
    assert scan_layer(LAYER, OPTIONS).secrets == compiled.secrets
    assert saved.name != rulecache._key(PATTERNS[:-1]), "other patterns, another key"


def test_a_damaged_file_is_compiled_again_and_replaced(fresh: None, tmp_path: Path) -> None:
    directory = tmp_path / "hs"
    rulecache.save(directory, PATTERNS, _scan.compile_rules(PATTERNS))
    (path,) = directory.iterdir()
    data = path.read_bytes()
    middle = len(data) // 2
    for broken in (data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1 :], data[:-100]):
        path.write_bytes(broken)
        assert rulecache.load(directory, PATTERNS) is None
    path.write_bytes(b"garbage")
    assert rulecache.load(directory, PATTERNS) is None
    native.prepare(OPTIONS, directory)
    assert scan_layer(LAYER, OPTIONS).secrets
    assert rulecache.load(directory, PATTERNS) is not None, "the compiled database replaced the damaged file"


def test_a_directory_others_can_write_to_is_not_trusted(fresh: None, tmp_path: Path) -> None:
    directory = tmp_path / "hs"
    rulecache.save(directory, PATTERNS, _scan.compile_rules(PATTERNS))
    assert rulecache.load(directory, PATTERNS) is not None
    for mode in (0o770, 0o707, 0o777):
        os.chmod(directory, mode)
        assert rulecache.load(directory, PATTERNS) is None
    os.chmod(directory, 0o777)
    (path,) = directory.iterdir()
    path.unlink()
    rulecache.save(directory, PATTERNS, _scan.compile_rules(PATTERNS))
    assert not list(directory.iterdir()), "nothing is saved where others could change it"


def test_a_file_where_the_directory_should_be_is_a_miss(fresh: None, tmp_path: Path) -> None:
    (tmp_path / "hs").write_text("not a directory")
    assert rulecache.load(tmp_path / "hs", PATTERNS) is None
    native.prepare(OPTIONS, tmp_path / "hs")  # compiles; saving fails quietly
    assert scan_layer(LAYER, OPTIONS).secrets


def test_the_directory_keeps_the_databases_used_last(fresh: None, tmp_path: Path) -> None:
    directory = tmp_path / "hs"
    rule_sets = [PATTERNS[: n + 1] for n in range(rulecache.KEEP + 1)]
    for n, patterns in enumerate(rule_sets[:-1]):  # KEEP of them, saved one after another
        rulecache.save(directory, patterns, _scan.compile_rules(patterns))
        os.utime(directory / rulecache._key(patterns), ns=(n + 1, n + 1))
    assert rulecache.load(directory, rule_sets[0]) is not None  # the oldest, used now
    rulecache.save(directory, rule_sets[-1], _scan.compile_rules(rule_sets[-1]))  # one too many
    kept = {p.name for p in directory.iterdir()}
    assert len(kept) == rulecache.KEEP
    assert rulecache._key(rule_sets[0]) in kept, "a database just used stays"
    assert rulecache._key(rule_sets[1]) not in kept, "the one used longest ago goes"
    assert rulecache._key(rule_sets[-1]) in kept
