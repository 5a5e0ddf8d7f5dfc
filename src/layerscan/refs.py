"""Image references: `[registry:|docker://][host[:port]/]path[:tag][@algo:hex]`, normalised as Docker does."""

from __future__ import annotations

import dataclasses
import re

from .errors import ExitCode, LayerscanError

DOCKER_HUB = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_PREFIXES = ("registry:", "docker://")

# The grammar of distribution/reference (reference/regexp.go).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
REPOSITORY = re.compile(rf"{_COMPONENT.pattern}(?:/{_COMPONENT.pattern})*")
TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # as registries and Anchore write one
_HOST = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)
_MAX_NAME = 255


class RefError(LayerscanError):
    """An image reference that does not parse."""

    exit_code = ExitCode.USAGE


@dataclasses.dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port], Docker Hub normalised to registry-1.docker.io
    repository: str  # "library/debian", "ns/repo"
    tag: str | None  # None when pulled by digest only
    digest: str | None  # "sha256:<hex>"

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse a reference; a missing tag and digest means `latest`, as Docker does."""
        ref = text.strip()
        for prefix in _PREFIXES:
            if ref.startswith(prefix):
                ref = ref[len(prefix) :]
                break
        if not ref:
            raise RefError(f"image reference {text!r} is empty")
        name, digest = ref, None
        if "@" in ref:
            name, _, digest = ref.partition("@")
            if not _DIGEST.fullmatch(digest):
                raise RefError(f"image reference {text!r}: {digest!r} is not a digest (algorithm:hex)")
            if digest.startswith("sha256:") and not SHA256_DIGEST.fullmatch(digest):
                raise RefError(f"image reference {text!r}: a sha256 digest has 64 lowercase hex digits")
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not TAG.fullmatch(tag):
                raise RefError(f"image reference {text!r}: {tag!r} is not a valid tag")
        registry, path = _split_host(name)
        if not path:
            raise RefError(f"image reference {text!r} has no repository")
        if len(path) > _MAX_NAME:
            raise RefError(f"image reference {text!r}: repository name longer than {_MAX_NAME} characters")
        for component in path.split("/"):
            if not _COMPONENT.fullmatch(component):
                raise RefError(
                    f"image reference {text!r}: repository component {component!r} must be lowercase "
                    "letters, digits and single separators (. _ __ -)"
                )
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, path, tag, digest)

    @property
    def display_registry(self) -> str:
        """The registry as users write it (docker.io for Docker Hub), for repo_tags and repo_digests."""
        return "docker.io" if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What to ask `/v2/<repo>/manifests/<reference>` for: the digest if there is one."""
        return self.digest or self.tag or "latest"

    def repo_tag(self) -> str | None:
        return f"{self.display_registry}/{self.repository}:{self.tag}" if self.tag else None

    def repo_digest(self, digest: str) -> str:
        return f"{self.display_registry}/{self.repository}@{digest}"

    def __str__(self) -> str:
        out = f"{self.display_registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_host(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a host iff it has a '.' or ':' or is 'localhost'."""
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.startswith("[")):
        if not _HOST.fullmatch(first):
            raise RefError(f"image reference {name!r}: {first!r} is not a valid registry host[:port]")
        return first.lower(), rest
    return "docker.io", name
