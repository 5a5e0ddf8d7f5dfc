"""The export's OS-package elements, from the dpkg, apk and rpm packages cataloged.

    os_package_list(packages, distro) -> {"pkgs.all", "pkgs_plus_source.all", "pkgfiles.all", "pkgs.allinfo"}
    pkgfilemeta(packages)            -> file_package_verify/distro.pkgfilemeta

Values follow anchore-format.md §2.3/§3.2: plain strings in pkgs.all and friends,
dicts in pkgs.allinfo (syft-era engine), JSON strings in pkgfilemeta. The first
package with a given name wins, as the engine's save_entry never overwrites.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ...catalog.metadata import ApkMetadata, DpkgMetadata, RpmMetadata
from ...catalog.model import Distro, Package
from ..jsonstream import Json, string
from .distro import analyzer_meta, flavor

PKGFILE_MARKERS = {"apk": "APKFILE", "dpkg": "DPKGFILE", "rpm": "RPMFILE"}
_RPM_ARCH = {"amd64": "x86_64"}

AllInfo = dict[str, str | list[str]]


def os_package_list(packages: list[Package], distro: Distro | None) -> dict[str, Mapping[str, Json]]:
    pkgs_all: dict[str, str] = {}
    plus_source: dict[str, str] = {}
    pkgfiles: dict[str, str] = {}
    allinfo: dict[str, AllInfo] = {}
    for p in packages:
        info = _allinfo(p)
        if info is None:
            continue
        for path in _database_paths(p):
            pkgfiles.setdefault(path, PKGFILE_MARKERS[p.type])
        if p.name in allinfo:
            continue
        allinfo[p.name] = info
        pkgs_all[p.name] = p.version
        if p.type in ("apk", "dpkg"):
            plus_source.setdefault(p.name, p.version)
            # Anchore quirk: the engine reads Syft's `originPackage`, which only apk
            # metadata has, and gives it the binary package's version.
            if p.type == "apk" and p.source:
                plus_source.setdefault(p.source, p.version)
    if not pkgs_all:
        busybox = flavor(distro) == "BUSYB"
        pkgs_all = {"BusyBox": analyzer_meta(distro)["DISTROVERS"]} if busybox else {"Unknown": "0"}
    return {
        "pkgs.all": pkgs_all,
        "pkgs_plus_source.all": plus_source,
        "pkgfiles.all": pkgfiles,
        "pkgs.allinfo": allinfo,
    }


def _allinfo(p: Package) -> AllInfo | None:
    """The package's pkgs.allinfo value; None for a package that is not an OS package."""
    m = p.metadata
    if isinstance(m, DpkgMetadata):
        return {
            "version": p.version,
            "sourcepkg": p.source or "N/A",
            "arch": p.arch,
            "origin": f"{m.maintainer} (maintainer)",
            "release": "N/A",
            "size": str(m.installed_size * 1000),
            "license": " ".join(p.licenses) or "Unknown",
            "type": "dpkg",
            "cpes": list(p.cpes),
        }
    if isinstance(m, ApkMetadata):
        version, _, release = p.version.rpartition("-")
        return {
            "name": p.name,
            "version": version if release else p.version,
            "release": release,
            "sourcepkg": p.source,
            "arch": p.arch,
            "origin": m.maintainer,
            "size": str(m.installed_size),
            "license": m.license_raw,
            "type": "APKG",
            "files": _database_paths(p),
            "cpes": list(p.cpes),
        }
    if isinstance(m, RpmMetadata):
        version, _, release = p.version.rpartition("-")
        return {
            "type": "rpm",
            "version": version if release else p.version,
            "release": release,
            "arch": _RPM_ARCH.get(p.arch, p.arch or "x86_64"),
            "sourcepkg": p.source,
            "origin": m.vendor or "(none)",
            "size": str(m.size),
            "license": p.licenses[0] if p.licenses else "",
            "cpes": list(p.cpes),
        }
    return None


def _database_paths(p: Package) -> list[str]:
    """The paths of the package database's file records, as Syft gives them to the engine:
    dpkg's md5sums and conffiles (not the symlinks and directories of its .list), rpm's
    file list, apk's directories and files in the database's order."""
    m = p.metadata
    if isinstance(m, (DpkgMetadata, ApkMetadata, RpmMetadata)):
        return [f.path for f in m.files]
    return []


def pkgfilemeta(packages: list[Package]) -> dict[str, str]:
    """path -> json.dumps(sort_keys) list of {conffile, digest, digestalgo, group, mode, package, size, user}.

    Each record is written as that JSON text directly, as a list of one: an image has ~100k
    of them, and most paths have one record, which is then its value as it stands."""
    out: dict[str, str] = {}
    shared: dict[str, list[str]] = {}  # the few paths with more than one record: no list for the rest
    for p in packages:
        for path, rec in _file_records(p):
            first = out.setdefault(path, rec)
            if first is not rec:  # each record is a new str: identity tells whether it went in
                shared.setdefault(path, [first]).append(rec)
    for path, recs in shared.items():
        out[path] = f"[{', '.join(rec[1:-1] for rec in recs)}]"
    return out


def _record_template(package: str, digestalgo: str) -> str:
    """A list of one of the package's records, as json.dumps(sort_keys=True) writes it: a
    %-template of the JSON texts of conffile, digest, group, mode, size and user. Made once
    per package, so that each of its files costs one formatting."""
    name, algo = (string(text).replace("%", "%%") for text in (package, digestalgo))
    return (
        f'[{{"conffile": %s, "digest": %s, "digestalgo": {algo}, "group": %s, "mode": %s, '
        f'"package": {name}, "size": %s, "user": %s}}]'
    )


def _text(value: str | None) -> str:
    return "null" if value is None else string(value)


def _file_records(p: Package) -> Iterator[tuple[str, str]]:
    m = p.metadata
    if isinstance(m, DpkgMetadata):
        # dpkg has no modes, owners or sizes to offer: the engine leaves them null.
        record = _record_template(p.name, "md5")
        for d in m.files:
            digest = string(d.digest.value) if d.digest else "null"
            yield d.path, record % ("true" if d.is_config_file else "false", digest, "null", "null", "null", "null")
    elif isinstance(m, ApkMetadata):
        # The engine's Z: decoding fails on py3, so its apk digests are always null: kept for parity.
        record = _record_template(p.name, "sha1")
        for a in m.files:
            if a.is_dir:
                continue
            mode = string(format(a.mode, "o").zfill(4)) if a.mode is not None else "null"
            group = string(str(a.gid)) if a.gid is not None else "null"
            user = string(str(a.uid)) if a.uid is not None else "null"
            yield a.path, record % ("false", "null", group, mode, "null", user)
    elif isinstance(m, RpmMetadata):
        record = _record_template(p.name, m.digest_algo)
        for r in m.files:
            yield (
                r.path,
                record
                % (
                    "true" if r.flags & 1 else "false",  # RPMFILE_CONFIG
                    _text(r.digest.value if r.digest else None),
                    _text(r.groupname or None),
                    string(format(r.mode, "o")),
                    string(str(r.size)),
                    _text(r.username or None),
                ),
            )
