"""Registry credentials handed over with one scan request (Harbor's robot account or token), held in
this process's memory for the analysis of that one image from that one registry host.

They are never written to the store or a log: a queued job carries only its source
(`registry:host/repo@sha256:…`). The analysis of that image from that host gets them as
`config.registries[host]` of a copy of the config, so they go to that host only (and, as any
registry credentials, never to where it redirects blob downloads). They are dropped once an
analysis with them succeeds, or after `ttl` seconds, whichever comes first.

Being in memory, they reach the analyzer that runs in the same process (`layerscan serve` with
its analyzer); a `layerscan worker` in another process pulls with its own configured credentials.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from ..config import Config, Registry
from ..refs import ImageRef, RefError

DEFAULT_TTL_S = 3600.0  # longer than any analysis waits in the queue and runs; Harbor's robot expires too


@dataclasses.dataclass(frozen=True)
class _Held:
    host: str
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    token: str | None = dataclasses.field(repr=False)
    expires: float  # time.monotonic()


class JobCredentials:
    """image digest -> the credentials for the one registry host it is to be pulled from; thread-safe."""

    def __init__(self, ttl: float = DEFAULT_TTL_S) -> None:
        self.ttl = ttl
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def put(
        self,
        digest: str,
        host: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> None:
        """Hold credentials (a username and password, or a Bearer token) for pulling `digest` from `host`."""
        with self._lock:
            self._expire()
            self._held[digest] = _Held(host, username, password, token, time.monotonic() + self.ttl)

    def config_for(self, spec: str, config: Config) -> Config:
        """`config`, with the held credentials for `spec`'s host when `spec` is that image at that host."""
        ref = _registry_ref(spec)
        if ref is None or ref.digest is None:
            return config
        with self._lock:
            self._expire()
            held = self._held.get(ref.digest)
        if held is None or held.host != ref.registry:
            return config
        known = config.registries.get(held.host) or Registry()
        scoped = dataclasses.replace(known, username=held.username, password=held.password, token=held.token)
        return dataclasses.replace(config, registries={**config.registries, held.host: scoped})

    def done(self, spec: str) -> None:
        """The analysis of `spec` succeeded: its credentials are not needed any more."""
        ref = _registry_ref(spec)
        if ref is not None and ref.digest is not None:
            self.discard(ref.digest)

    def discard(self, digest: str) -> None:
        with self._lock:
            self._held.pop(digest, None)

    def held(self) -> int:
        with self._lock:
            self._expire()
            return len(self._held)

    def _expire(self) -> None:
        now = time.monotonic()
        for digest in [d for d, h in self._held.items() if h.expires <= now]:
            del self._held[digest]


def _registry_ref(spec: str) -> ImageRef | None:
    kind, sep, rest = spec.partition(":")
    if not sep or kind != "registry":
        return None
    try:
        return ImageRef.parse(rest)
    except RefError:
        return None


# The process's one holder: the API puts into it, the in-process analyzer reads from it.
JOB_CREDENTIALS = JobCredentials()
