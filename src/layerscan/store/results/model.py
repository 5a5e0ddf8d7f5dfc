"""What both result cache stores (local directory, Redis) offer: bytes by key, bounded, LRU."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar, cast

from ...errors import LayerscanError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class StoreError(LayerscanError):
    """The result cache's store failed (disk, index, Redis); the analysis goes on without it."""


def fits(value: bytes, max_bytes: int, kind: str, subject: str) -> bool:
    """Whether a value can be stored at all: one larger than the whole bound is not."""
    if len(value) <= max_bytes:
        return True
    log.info("result cache: a %d-byte %s entry for %s is larger than the whole cache", len(value), kind, subject)
    return False


def store_errors(*errors: type[BaseException]) -> Callable[[F], F]:
    """A decorator: the store's own failures (`errors`) come out of the method as StoreError."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def call(*args: Any, **kw: Any) -> Any:
            try:
                return method(*args, **kw)
            except errors as e:
                raise StoreError(f"{type(e).__name__}: {e}") from e

        return cast(F, call)

    return wrap


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str  # 32 hex digits (xxh3_128)
    kind: str  # "layer" or "image"
    subject: str  # the layer digest, or the image's manifest digest
    size: int  # bytes stored
    last_access: float  # seconds since the epoch


@dataclasses.dataclass(frozen=True)
class Stats:
    where: str  # the directory, or the Redis URL without its password
    layers: int
    images: int
    bytes: int
    max_bytes: int


class Store(Protocol):
    def where(self) -> str: ...

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, kind: str, subject: str) -> None:
        """Store a value, evicting least recently used ones so that the bound holds."""
        ...

    def exclusive(self, key: str) -> AbstractContextManager[None]:
        """Held by one caller at a time for `key`, across threads, processes (and hosts, for a shared
        store); a holder that dies lets go of it. Its wait is bounded: after a while it is entered anyway."""
        ...

    def entries(self) -> list[Entry]:
        """Least recently used first."""
        ...

    def stats(self) -> Stats: ...

    def prune(self, max_bytes: int | None = None) -> int:
        """Evict down to `max_bytes` (default: the bound) and drop stale bookkeeping; returns bytes freed."""
        ...

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        ...

    def close(self) -> None: ...
