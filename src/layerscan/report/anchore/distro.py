"""The distro as Anchore names it: analyzer_meta and the distro flavor."""

from __future__ import annotations

from ...catalog.model import Distro

FLAVORS = {
    "centos": "RHEL",
    "rhel": "RHEL",
    "redhat": "RHEL",
    "fedora": "RHEL",
    "ol": "RHEL",
    "debian": "DEB",
    "ubuntu": "DEB",
    "busybox": "BUSYB",
    "alpine": "ALPINE",
}


def analyzer_meta(distro: Distro | None) -> dict[str, str]:
    """DISTRO, DISTROVERS, LIKEDISTRO; Anchore writes Unknown / 0 / =DISTRO when nothing identifies the distro."""
    if distro is None or not distro.id:
        return {"DISTRO": "Unknown", "DISTROVERS": "0", "LIKEDISTRO": "Unknown"}
    return {"DISTRO": distro.id, "DISTROVERS": distro.version_id or "0", "LIKEDISTRO": distro.id_like or distro.id}


def flavor(distro: Distro | None) -> str:
    """RHEL | DEB | ALPINE | BUSYB | Unknown, from the id, else the first known ID_LIKE."""
    if distro is None:
        return "Unknown"
    for name in (distro.id, *distro.id_like.split(",")):
        if name in FLAVORS:
            return FLAVORS[name]
    return "Unknown"
