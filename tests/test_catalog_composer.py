"""The Composer cataloger on Syft's own test data, against the packages Syft's tests expect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fsview import image_files_from_dir
from layerscan.catalog import composer
from layerscan.catalog.model import CatalogError, Package

FIXTURES = Path(__file__).parent / "fixtures" / "composer"

# parse_composer_lock_test.go: the lock's "packages", not its "packages-dev"
LOCK = [
    ("adoy/fastcgi-client", "1.0.2", "pkg:composer/adoy/fastcgi-client@1.0.2", ("MIT",)),
    ("alcaeus/mongo-php-adapter", "1.1.11", "pkg:composer/alcaeus/mongo-php-adapter@1.1.11", ("MIT",)),
]
# parse_installed_json_test.go: the same two packages from Composer 1's and Composer 2's form
INSTALLED = [
    ("asm89/stack-cors", "1.3.0", "pkg:composer/asm89/stack-cors@1.3.0", ("MIT",)),
    ("behat/mink", "v1.8.1", "pkg:composer/behat/mink@v1.8.1", ("MIT",)),
]


def catalog(root: Path) -> list[Package | CatalogError]:
    return list(composer.CATALOGER.catalog(image_files_from_dir(root, composer.CATALOGER.globs), None))


@pytest.mark.parametrize(
    "fixture,expected",
    [
        ("composer.lock", LOCK),
        ("vendor/composer_1/installed.json", INSTALLED),
        ("vendor/composer_2/installed.json", INSTALLED),
    ],
)
def test_syft_fixtures(tmp_path: Path, fixture: str, expected: list) -> None:
    dest = tmp_path / "app" / fixture
    dest.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / fixture, dest)
    found = catalog(tmp_path)
    assert [(p.name, p.version, p.purl, p.licenses) for p in found if isinstance(p, Package)] == expected
    assert all(p.location == f"/app/{fixture}" for p in found if isinstance(p, Package))


def test_metadata_of_composer_2(tmp_path: Path) -> None:
    dest = tmp_path / "var/www/vendor/composer/installed.json"
    dest.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "vendor/composer_2/installed.json", dest)
    stack, mink = (p for p in catalog(tmp_path) if isinstance(p, Package))
    assert stack.metadata.install_path == "../asm89/stack-cors"
    assert stack.metadata.authors == ("Alexander <iam.asm89@gmail.com>",)
    assert "php: >=5.5.9" in stack.metadata.require
    assert stack.metadata.source_reference == "b9c31def6a83f84b4d4a40d35996d375755f0e08"
    assert (stack.metadata.dev, mink.metadata.dev) == (False, True)  # dev-package-names


def test_other_json_and_bad_json(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/installed.json").write_text('{"tool": "not composer"}')  # another tool's file: nothing
    (tmp_path / "b").mkdir()
    (tmp_path / "b/composer.lock").write_text("{not json")
    (tmp_path / "c").mkdir()
    (tmp_path / "c/composer.lock").write_text('{"packages": [{"name": "x/y/z", "version": "1.0"}, {"version": "2"}]}')
    found = catalog(tmp_path)
    assert [(e.path, e.reason[:8]) for e in found if isinstance(e, CatalogError)] == [("/b/composer.lock", "not JSON")]
    # a name of three parts: Syft joins the rest with "-"; an entry without a name is left out
    assert [p.purl for p in found if isinstance(p, Package)] == ["pkg:composer/x/y-z@1.0"]
