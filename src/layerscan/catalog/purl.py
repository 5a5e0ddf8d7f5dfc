"""Package URLs written the way Syft writes them (packageurl-go escaping)."""

from __future__ import annotations

from urllib.parse import quote

from .model import Distro


def _esc(text: str) -> str:
    # packageurl-go keeps ':' (deb epochs) and escapes '+', '@', '/', ' ' and the rest.
    return quote(text, safe=":")


def purl(kind: str, namespace: str, name: str, version: str, qualifiers: dict[str, str] | None = None) -> str:
    """pkg:kind/namespace/name@version?k=v&... with empty qualifiers dropped and the rest sorted by key."""
    # A namespace's segments are escaped one by one: Go module paths keep their "/".
    out = f"pkg:{kind}/" + "".join(f"{_esc(segment)}/" for segment in namespace.split("/") if segment) + _esc(name)
    if version:
        out += "@" + _esc(version)
    q = sorted((k, v) for k, v in (qualifiers or {}).items() if v)
    if q:
        out += "?" + "&".join(f"{k}={_esc(v)}" for k, v in q)
    return out


# The namespace when no os-release names the distro (rpm has no default).
_OS_NAMESPACE = {"apk": "alpine", "deb": "debian"}


def os_purl(
    kind: str, distro: Distro | None, name: str, version: str, arch: str, upstream: str, **qualifiers: str
) -> str:
    """An OS package's purl as Syft writes it: the distro's id as namespace (a default for the
    package type when the distro is unknown) and the arch, distro and upstream qualifiers."""
    namespace = distro.id if distro else _OS_NAMESPACE.get(kind, "")
    return purl(
        kind,
        namespace,
        name,
        version,
        {"arch": arch, "distro": _distro_qualifier(distro), "upstream": upstream, **qualifiers},
    )


def _distro_qualifier(distro: Distro | None) -> str:
    """'debian-12', 'alpine-3.18.0'; '' when the distro or its version is unknown."""
    if distro is None or not distro.version_id:
        return distro.id if distro else ""
    return f"{distro.id}-{distro.version_id}"
