"""The Anchore export's OS-package elements, computed from cataloged packages.

    os_package_list(packages, distro) -> {"pkgs.all", "pkgs_plus_source.all", "pkgfiles.all", "pkgs.allinfo"}
    pkgfilemeta(packages)            -> file_package_verify/distro.pkgfilemeta

Values follow anchore-format.md §2.3/§3.2: plain strings in pkgs.all and friends,
dicts in pkgs.allinfo (syft-era engine), JSON strings in pkgfilemeta. The first
package with a given name wins, as the engine's save_entry never overwrites.
The report writer adds the analyzer/element nesting and the kvfile encoding.
"""

from __future__ import annotations

import json

from .distro import anchore_meta, flavor
from .model import Distro, Package

PKGFILE_MARKERS = {"apk": "APKFILE", "dpkg": "DPKGFILE", "rpm": "RPMFILE"}
_RPM_ARCH = {"amd64": "x86_64"}


def os_package_list(packages: list[Package], distro: Distro | None) -> dict[str, dict]:
    pkgs_all: dict[str, str] = {}
    plus_source: dict[str, str] = {}
    pkgfiles: dict[str, str] = {}
    allinfo: dict[str, dict] = {}
    for p in packages:
        if p.type not in PKGFILE_MARKERS:
            continue
        for f in p.files:
            pkgfiles.setdefault(f, PKGFILE_MARKERS[p.type])
        if p.name in allinfo:
            continue
        allinfo[p.name] = _allinfo(p)
        pkgs_all[p.name] = p.version
        if p.type in ("apk", "dpkg"):
            plus_source.setdefault(p.name, p.version)
            if p.source:
                plus_source.setdefault(p.source, p.source_version or p.version)
    if not pkgs_all:
        meta = anchore_meta(distro)
        pkgs_all = {"BusyBox": meta["DISTROVERS"]} if flavor(distro) == "BUSYB" else {"Unknown": "0"}
    return {
        "pkgs.all": pkgs_all,
        "pkgs_plus_source.all": plus_source,
        "pkgfiles.all": pkgfiles,
        "pkgs.allinfo": allinfo,
    }


def _allinfo(p: Package) -> dict:
    m = p.metadata
    if p.type == "dpkg":
        return {
            "version": p.version,
            "sourcepkg": p.source or "N/A",
            "arch": p.arch,
            "origin": f"{m.get('maintainer', '')} (maintainer)",
            "release": "N/A",
            "size": str(m.get("installed_size", 0) * 1000),
            "license": " ".join(p.licenses) or "Unknown",
            "type": "dpkg",
            "cpes": [],
        }
    if p.type == "apk":
        version, _, release = p.version.rpartition("-")
        return {
            "name": p.name,
            "version": version if release else p.version,
            "release": release,
            "sourcepkg": p.source,
            "arch": p.arch,
            "origin": m.get("maintainer", ""),
            "size": str(m.get("installed_size", 0)),
            "license": m.get("license_raw", ""),
            "type": "APKG",
            "files": list(p.files),
            "cpes": [],
        }
    version, _, release = p.version.rpartition("-")
    return {
        "type": "rpm",
        "version": version if release else p.version,
        "release": release,
        "arch": _RPM_ARCH.get(p.arch, p.arch or "x86_64"),
        "sourcepkg": p.source,
        "origin": m.get("vendor") or "(none)",
        "size": str(m.get("size", 0)),
        "license": p.licenses[0] if p.licenses else "",
        "cpes": [],
    }


def pkgfilemeta(packages: list[Package]) -> dict[str, str]:
    """path -> json.dumps(sort_keys) list of {conffile, digest, digestalgo, group, mode, package, size, user}."""
    out: dict[str, list[dict]] = {}
    for p in packages:
        for path, rec in _file_records(p):
            out.setdefault(path, []).append(rec)
    return {path: json.dumps(recs, sort_keys=True) for path, recs in out.items()}


def _record(package: str, **fields) -> dict:
    rec = {
        "conffile": False,
        "digest": None,
        "digestalgo": None,
        "group": None,
        "mode": None,
        "package": package,
        "size": None,
        "user": None,
    }
    rec.update(fields)
    return rec


def _file_records(p: Package):
    files = p.metadata.get("files", [])
    if p.type == "dpkg":
        # dpkg has no modes, owners or sizes to offer: the engine leaves them null.
        for f in files:
            d = f["digest"]
            yield (
                f["path"],
                _record(p.name, digest=d["value"] if d else None, digestalgo="md5", conffile=f["is_config_file"]),
            )
    elif p.type == "apk":
        # The engine's Z: decoding fails on py3, so its apk digests are always null: kept for parity.
        for f in files:
            if f["is_dir"]:
                continue
            yield (
                f["path"],
                _record(
                    p.name,
                    digestalgo="sha1",
                    mode=format(f["mode"], "o").zfill(4) if f["mode"] is not None else None,
                    group=str(f["gid"]) if f["gid"] is not None else None,
                    user=str(f["uid"]) if f["uid"] is not None else None,
                ),
            )
    elif p.type == "rpm":
        for f in files:
            d = f["digest"]
            yield (
                f["path"],
                _record(
                    p.name,
                    digest=d["value"] if d else None,
                    digestalgo=p.metadata["digest_algo"],
                    mode=format(f["mode"], "o"),
                    group=f["groupname"] or None,
                    user=f["username"] or None,
                    size=str(f["size"]),
                    conffile=bool(f["flags"] & 1),  # RPMFILE_CONFIG
                ),
            )
