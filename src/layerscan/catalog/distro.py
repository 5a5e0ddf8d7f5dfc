"""Which distribution an image is, read the way Anchore's analyzer reads it.

Order and quirks follow `get_distro_from_squashtar`: the first of os-release,
system-release-cpe, redhat-release and busybox that exists decides (links
followed); debian_version only fills a missing Debian version.
"""

from __future__ import annotations

import re

from ..filetree import ImageFiles
from .files import read_optional
from .model import Distro

OS_RELEASE = "/etc/os-release"
SYSTEM_RELEASE_CPE = "/etc/system-release-cpe"
REDHAT_RELEASE = "/etc/redhat-release"
BUSYBOX = "/bin/busybox"
DEBIAN_VERSION = "/etc/debian_version"

# Link targets are captured too: /etc/os-release -> ../usr/lib/os-release, merged-/usr /bin.
GLOBS = (
    OS_RELEASE,
    "/usr/lib/os-release",
    SYSTEM_RELEASE_CPE,
    "/etc/*-release",
    BUSYBOX,
    "/usr/bin/busybox",
    DEBIAN_VERSION,
)

_BUSYBOX_VERSION = re.compile(rb"BusyBox (v[\d|.]+) \(")


def detect(files: ImageFiles) -> Distro | None:
    """The image's distro, or None when none of Anchore's files says anything."""
    fields: dict[str, str] = {}
    for path, parse in _SOURCES:
        if path not in files:  # Anchore looks the name up in the squashed tar: a link counts, a linked parent does not
            continue
        content = read_optional(files, path)
        if content is None and parse is not _busybox:  # unreadable: Anchore goes on to the next source
            continue
        fields = parse(content or b"")
        break
    if fields.get("id") == "debian" and not fields.get("version_id") and DEBIAN_VERSION in files:
        fields["version_id"] = _debian_version(read_optional(files, DEBIAN_VERSION) or b"")
    if not fields.get("id"):
        return None
    return Distro(fields["id"], fields.get("version_id", ""), fields.get("id_like", ""))


def _lines(content: bytes) -> list[str]:
    return [line.strip() for line in content.decode("utf-8", "replace").splitlines()]


def _os_release(content: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _lines(content):
        parts = line.split("=")
        if len(parts) != 2:  # Anchore skips a line with more than one '='
            continue
        key, val = parts[0], parts[1].replace('"', "")
        if key == "ID":
            out["id"] = val
        elif key == "VERSION_ID":
            out["version_id"] = val
        elif key == "ID_LIKE":
            out["id_like"] = ",".join(val.split())
    return out


def _system_release_cpe(content: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _lines(content):
        parts = line.split(":")
        if len(parts) < 5:
            continue
        vendor, name, version = parts[2].lower(), parts[3], parts[4]
        for marker, known in (("fedora", "fedora"), ("redhat", "rhel"), ("centos", "centos")):
            if marker in vendor:
                name = known
                break
        out = {"id": name, "version_id": version}
    return out


def _redhat_release(content: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _lines(content):
        low = line.lower()
        name = next(
            (
                known
                for marker, known in (("centos", "centos"), ("redhat", "rhel"), ("fedora", "fedora"))
                if marker in low
            ),
            None,
        )
        # Anchore's greedy '.*(\d+\.\d+)' keeps only the last digit of the major version: kept for parity.
        m = re.match(r".*(\d+\.\d+)", line) or re.match(r".*(\d+)", line)
        if name:
            out["id"] = name
        if m:
            out["version_id"] = m.group(1)
    return out


def _busybox(content: bytes) -> dict[str, str]:
    m = _BUSYBOX_VERSION.search(content)
    return {"id": "busybox", "version_id": m.group(1).decode() if m else "0"}


def _debian_version(content: bytes) -> str:
    version = ""
    for line in _lines(content):
        m = re.match(r"(\d+)\.", line)
        if m:
            version = m.group(1)
        elif "sid" in line:
            version = "unstable"
    return version


_SOURCES = (
    (OS_RELEASE, _os_release),
    (SYSTEM_RELEASE_CPE, _system_release_cpe),
    (REDHAT_RELEASE, _redhat_release),
    (BUSYBOX, _busybox),
)
