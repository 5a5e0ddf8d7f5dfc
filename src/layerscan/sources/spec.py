"""Source specs: which source an image comes from, and which image inside it.

    oci-dir:PATH[:REF]          an OCI image layout directory
    oci-archive:FILE[:REF]      a tar of one
    docker-archive:FILE[:TAG]   `docker save` output (its classic form, or Docker's OCI form)
    ...:@N                      instead of REF or TAG: the N-th image (from 0) the source lists
    registry:REF, docker://REF  an image in a registry, REF as in refs.ImageRef
    PATH                        a layout directory or either archive, detected by its content

Choosing an image inside a layout or archive follows skopeo (containers-transports(5)):
REF is matched exactly against the `org.opencontainers.image.ref.name` annotations of
index.json; TAG is a Docker reference without a digest, matched after Docker's
normalisation against the RepoTags of manifest.json (`app:1.0` is
`docker.io/library/app:1.0`, `app` is `app:latest`), or against the
`io.containerd.image.name` annotations of Docker's OCI form. `@N` counts the items of
manifest.json (docker save's classic form) or the entries of index.json (an OCI layout, and
Docker's OCI form, which lists an image once per tag); skopeo reads @N for docker-archive,
layerscan for all three. Several images and no choice: the error lists each entry.

Parsing rule, skopeo's: after a local scheme, the path ends at the FIRST colon and
everything after it is REF, TAG or @N. The choice may hold colons, the path may not:

    docker-archive:x.tar:localhost:5000/app:1.0  -> x.tar, tag localhost:5000/app:1.0
    oci-dir:layout:app:1.0                        -> layout, ref.name "app:1.0"
    oci-dir:/data/img:v1/layout                   -> /data/img, ref.name "v1/layout"

A path that contains a colon is given bare, without a scheme: the whole spec is then the
path (it must exist), and the image inside it is the only one or chosen by platform.
Registry references are never split: their colons are ports and tags.
"""

from __future__ import annotations

import dataclasses

from ..errors import SourceError
from ..refs import ImageRef

LOCAL_SCHEMES = ("oci-dir", "oci-archive", "docker-archive")
REGISTRY_PREFIXES = ("registry:", "docker://")


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which image of a layout or archive: by name (a ref.name or a tag), by position, or (neither) the only one."""

    name: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.index is not None:
            return f":@{self.index}"
        return f":{self.name}" if self.name is not None else ""


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    kind: str  # one of LOCAL_SCHEMES, or "registry"
    location: str  # the path, or the image reference
    choice: Choice = Choice()

    @property
    def name(self) -> str:
        """The spec as it is shown in reports and messages."""
        return f"{self.kind}:{self.location}{self.choice}"


def registry_reference(spec: str) -> str | None:
    """The image reference in a `registry:REF` or `docker://REF` spec; None for a local source."""
    for prefix in REGISTRY_PREFIXES:
        if spec.startswith(prefix):
            return spec[len(prefix) :]
    return None


def parse_spec(spec: str) -> SourceSpec | None:
    """The spec's parts, by the rule above; None when it has no scheme (a bare path, or a mistake).

    Pure: nothing is looked up on disk or on the network.
    """
    ref = registry_reference(spec)
    if ref is not None:
        return SourceSpec("registry", ref)
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in LOCAL_SCHEMES:
        return None
    path, sep, chosen = rest.partition(":")
    if not path:
        raise SourceError(f"{spec!r} names no path after {scheme}:")
    if not sep:
        return SourceSpec(scheme, path)
    return SourceSpec(scheme, path, _choice(scheme, chosen, spec))


def _choice(scheme: str, text: str, spec: str) -> Choice:
    if not text:
        raise SourceError(f"{spec!r}: nothing after the ':' that ends the path; give a {_what(scheme)} or @N")
    if text.startswith("@"):
        if not (text[1:].isascii() and text[1:].isdigit()):
            raise SourceError(f"{spec!r}: {text!r} is not @N, the position (from 0) of an image in the source")
        return Choice(index=int(text[1:]))
    if scheme == "docker-archive":
        if ImageRef.parse(text).digest is not None:  # a malformed tag is a RefError, a usage error
            raise SourceError(f"{spec!r}: docker-archive images are chosen by tag, not by digest (as skopeo)")
    return Choice(name=text)


def _what(scheme: str) -> str:
    return "tag (NAME[:TAG])" if scheme == "docker-archive" else "ref.name"
