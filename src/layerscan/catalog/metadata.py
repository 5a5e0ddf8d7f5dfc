"""What each ecosystem knows about a package beyond the common fields: `Package.metadata`.

One frozen dataclass per ecosystem; `PackageMetadata` is their union, and report
writers tell them apart with isinstance. The JSON report writes a metadata value as
an object of its fields in declaration order; a field made with `_absent()` is left
out while it is None (it does not apply to that package), and a field with a
JSON_KEY is written under the name its source file gives it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

OPTIONAL = "layerscan.optional"  # field metadata: None means "does not apply", left out of JSON
JSON_KEY = "layerscan.json_key"  # field metadata: the field's key in JSON


def _absent() -> Any:  # Any: dataclasses.field's own return type
    return dataclasses.field(default=None, metadata={OPTIONAL: True})


@dataclasses.dataclass(frozen=True, slots=True)  # one per file a package database lists
class FileDigest:
    algorithm: str  # "md5", "sha1", "sha256", ...
    value: str  # hex


@dataclasses.dataclass(frozen=True, slots=True)  # one per file a package database lists
class DpkgFile:
    path: str
    digest: FileDigest | None  # md5 from info/<pkg>.md5sums or the Conffiles field
    is_config_file: bool


@dataclasses.dataclass(frozen=True)
class DpkgMetadata:
    installed_size: int = 0  # KiB, as dpkg writes it
    maintainer: str = ""
    status: str = ""  # the Status field ("" when absent, as in distroless)
    depends: tuple[str, ...] = ()  # raw relationship clauses
    pre_depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    files: tuple[DpkgFile, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)  # one per file a package database lists
class ApkFile:
    path: str
    digest: FileDigest | None  # sha1 from Z:
    uid: int | None  # from a: (files) or M: (directories)
    gid: int | None
    mode: int | None
    is_dir: bool


@dataclasses.dataclass(frozen=True)
class ApkMetadata:
    size: int = 0  # bytes (S:)
    installed_size: int = 0  # bytes (I:)
    maintainer: str = ""  # m:
    url: str = ""  # U:
    description: str = ""  # T:
    commit: str = ""  # c:
    checksum: str = ""  # C: as written ("Q1…")
    depends: tuple[str, ...] = ()  # D:
    provides: tuple[str, ...] = ()  # p:
    license_raw: str = ""  # L: as written
    files: tuple[ApkFile, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)  # one per file a package database lists
class RpmFile:
    path: str
    mode: int  # with S_IFMT
    size: int
    digest: FileDigest | None
    username: str
    groupname: str
    flags: int  # RPMFILE_*: 1 config, 64 ghost, ...


@dataclasses.dataclass(frozen=True)
class RpmMetadata:
    epoch: int | None = None
    version: str = ""  # the parts of the EVR
    release: str = ""
    vendor: str = ""
    modularity_label: str = ""
    size: int = 0  # bytes (LONGSIZE or SIZE)
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    database: str = ""  # "bdb" | "sqlite" | "ndb"
    digest_algo: str = ""  # the file digest algorithm ("md5", "sha256", ...)
    files: tuple[RpmFile, ...] = ()


@dataclasses.dataclass(frozen=True)
class NpmMetadata:
    author: str = ""  # every person named by author/authors/contributors/maintainers, as Syft joins them
    author_field: str = ""  # the `author` field alone: the origin Anchore's Syft 0.x gives
    homepage: str = ""
    url: str = ""  # the repository
    description: str = ""
    private: bool = False
    # From the project's package-lock.json, when it lists the package:
    resolved: str | None = _absent()
    integrity: str | None = _absent()
    dev: bool | None = _absent()


@dataclasses.dataclass(frozen=True)
class GemMetadata:
    authors: tuple[str, ...] = ()
    homepage: str = ""
    summary: str = ""
    files: tuple[str, ...] = ()  # as the gemspec lists them


@dataclasses.dataclass(frozen=True)
class PomProperties:
    group_id: str = dataclasses.field(metadata={JSON_KEY: "groupId"})
    artifact_id: str = dataclasses.field(metadata={JSON_KEY: "artifactId"})
    version: str


@dataclasses.dataclass(frozen=True)
class JavaMetadata:
    manifest: dict[str, str] = dataclasses.field(default_factory=dict)  # the main section of MANIFEST.MF
    group_id: str = ""  # from pom.properties or the manifest
    # Syft's: Package.location, with ":<groupId>:<artifactId>" for a package that a bundled
    # pom.properties gives besides the archive's own (a shaded jar's), as Syft 1.x writes it
    virtual_path: str = ""
    # the manifest's other sections (each with its "Name"), in file order
    sections: tuple[dict[str, str], ...] = ()
    pom_properties: PomProperties | None = _absent()  # when a pom.properties gave the package


@dataclasses.dataclass(frozen=True)
class DirectUrl:
    """PEP 610 direct_url.json with a VCS origin."""

    url: str
    vcs: str
    commit_id: str


@dataclasses.dataclass(frozen=True)
class PythonMetadata:
    name: str = ""  # as declared; Package.name is normalized
    author: str = ""
    author_email: str = ""
    home_page: str = ""
    summary: str = ""
    requires_python: str = ""
    site_packages: str = ""  # the directory the distribution is installed in
    top_level: tuple[str, ...] = ()  # top_level.txt
    direct_url: DirectUrl | None = _absent()


@dataclasses.dataclass(frozen=True)
class NugetMetadata:
    kind: str = (
        ""  # "package" | "project" | "runtimepack" (deps.json), "nuspec", "packages.config", "packages.lock.json"
    )
    # deps.json libraries:
    sha512: str | None = _absent()
    path: str | None = _absent()
    hash_path: str | None = _absent()
    dependencies: tuple[str, ...] | None = _absent()  # "Name/Version" of the target entry
    authors: str | None = _absent()  # nuspec
    target_framework: str | None = _absent()  # packages.config
    type: str | None = _absent()  # packages.lock.json: Direct | Transitive | ...


@dataclasses.dataclass(frozen=True)
class GoMetadata:
    """A module in a Go binary's build info (Syft's GolangBinaryBuildinfoEntry)."""

    go_compiled_version: str = ""  # "go1.21.3"
    h1_digest: str = ""  # the go.sum hash, "h1:…"
    main_module: str = ""  # the binary's main module path
    architecture: str = ""  # GOARCH, from the build settings
    build_settings: dict[str, str] | None = _absent()  # the main module's only ("-ldflags", "vcs.revision", …)
    go_experiments: tuple[str, ...] = ()  # from the version's " X:…" suffix


@dataclasses.dataclass(frozen=True)
class ComposerMetadata:
    """A package of composer.lock or vendor/composer/installed.json."""

    type: str = ""  # "library", "project", "composer-plugin", …
    description: str = ""
    homepage: str = ""
    source_url: str = ""  # source.url (a git repository)
    source_reference: str = ""  # source.reference (a commit)
    dist_url: str = ""
    dist_shasum: str = ""
    authors: tuple[str, ...] = ()  # "Name <email>"
    require: tuple[str, ...] = ()  # "name: constraint"
    install_path: str | None = _absent()  # installed.json v2
    dev: bool = False  # from packages-dev, or installed.json's dev-package-names


@dataclasses.dataclass(frozen=True)
class RustMetadata:
    """A crate in the dependency list cargo-auditable embeds (Syft's RustBinaryAuditEntry)."""

    source: str = ""  # "crates.io", "local", "git", "registry", …


@dataclasses.dataclass(frozen=True)
class BinaryMetadata:
    """A runtime found by its version string in an executable (Syft's binary classifiers)."""

    classifier: str = ""  # "python-binary", "go-binary", …
    evidence: str = ""  # the bytes that gave the version, as text
    evidence_type: str = "binary"  # Anchore's: "binary", or "devel" for a header or a VERSION file


PackageMetadata = (
    DpkgMetadata
    | ApkMetadata
    | RpmMetadata
    | NpmMetadata
    | GemMetadata
    | JavaMetadata
    | PythonMetadata
    | NugetMetadata
    | GoMetadata
    | ComposerMetadata
    | RustMetadata
    | BinaryMetadata
)
