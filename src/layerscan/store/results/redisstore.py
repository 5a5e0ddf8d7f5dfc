"""The result cache in Redis (`result_cache_url: redis://…`), shared by every host.

    {layerscan-rc}:v:<key>   one encoded value (see codec), with a TTL renewed on every hit
    {layerscan-rc}:lru       sorted set: key -> last access (µs)
    {layerscan-rc}:meta      hash: key -> "kind size subject"
    {layerscan-rc}:bytes     the sizes of the values, added up
    {layerscan-rc}:lock:<key> held by the one analysis scanning that layer (`exclusive`)

The size bound is ours, enforced atomically by the put script (Lua runs alone in Redis):
a server-wide `maxmemory-policy allkeys-lru` would also evict the keys of anything else
sharing the server, such as a Celery broker's queues. A value that expires (TTL) leaves its
bookkeeping behind until it is evicted or `prune`d: it is still counted, so the bound is
kept, conservatively. The braces are a hash tag: every key sits in one cluster slot.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis

from . import codec
from .model import Entry, Stats, fits, store_errors

log = logging.getLogger(__name__)

_failures = store_errors(redis.RedisError)
PREFIX = "{layerscan-rc}:"
_LRU, _META, _BYTES = PREFIX + "lru", PREFIX + "meta", PREFIX + "bytes"
# A lock's holder renews it every third of this while it lives; a holder that died (kill -9)
# lets it expire in this long. A waiter enters anyway after _LOCK_WAIT_S (a stuck holder).
_LOCK_TTL_S = 6.0
_LOCK_WAIT_S = 600.0

# KEYS: lru, meta, bytes. ARGV: prefix, limit. Pops least recently used keys until the sum is
# within the limit; returns bytes freed. Shared by put and prune (defined once, prepended).
_EVICT = """
local function evict(limit)
  local total = tonumber(redis.call('GET', KEYS[3]) or '0')
  local freed = 0
  while total > limit do
    local popped = redis.call('ZPOPMIN', KEYS[1])
    if #popped == 0 then break end
    local victim = popped[1]
    local meta = redis.call('HGET', KEYS[2], victim)
    local size = meta and tonumber(string.match(meta, '^%S+ (%d+)')) or 0
    redis.call('DEL', ARGV[1] .. 'v:' .. victim)
    redis.call('HDEL', KEYS[2], victim)
    total = total - size
    freed = freed + size
  end
  redis.call('SET', KEYS[3], math.max(total, 0))
  return freed
end
"""
# ARGV: prefix, limit, key, value, ttl seconds, now µs, "kind size subject".
_PUT = (
    _EVICT
    + """
local key, size = ARGV[3], string.len(ARGV[4])
local old = redis.call('HGET', KEYS[2], key)
if old then
  redis.call('ZREM', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('DECRBY', KEYS[3], tonumber(string.match(old, '^%S+ (%d+)')))
end
evict(tonumber(ARGV[2]) - size)
redis.call('SET', ARGV[1] .. 'v:' .. key, ARGV[4], 'EX', tonumber(ARGV[5]))
redis.call('ZADD', KEYS[1], tonumber(ARGV[6]), key)
redis.call('HSET', KEYS[2], key, ARGV[7])
redis.call('INCRBY', KEYS[3], size)
return 1
"""
)
# ARGV: prefix, limit. Forgets expired values, then evicts down to the limit.
_PRUNE = (
    _EVICT
    + """
local gone = 0
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. 'v:' .. key) == 0 then
    local meta = redis.call('HGET', KEYS[2], key)
    redis.call('ZREM', KEYS[1], key)
    redis.call('HDEL', KEYS[2], key)
    if meta then gone = gone + tonumber(string.match(meta, '^%S+ (%d+)')) end
  end
end
redis.call('DECRBY', KEYS[3], gone)
return evict(tonumber(ARGV[2]))
"""
)
# ARGV: prefix, key, ttl seconds, now µs. The value, its TTL renewed and its access time moved.
_GET = """
local value = redis.call('GET', ARGV[1] .. 'v:' .. ARGV[2])
if value then
  redis.call('EXPIRE', ARGV[1] .. 'v:' .. ARGV[2], tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[4]), ARGV[2])
end
return value
"""


class RedisStore:
    """A bounded, LRU key -> bytes store in Redis, with a TTL on every value."""

    def __init__(self, url: str, max_bytes: int, ttl_seconds: int) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        # Short timeouts: an unreachable Redis costs an analysis seconds (then it runs cold), not minutes.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        self._get = self.client.register_script(_GET)
        self._put = self.client.register_script(_PUT)
        self._prune = self.client.register_script(_PRUNE)

    def where(self) -> str:
        return redact(self.url)

    @_failures
    def get(self, key: str) -> bytes | None:
        value = self._get(keys=[_LRU], args=[PREFIX, key, self.ttl_seconds, _now_us()])
        return bytes(value) if value is not None else None

    @_failures
    def put(self, key: str, value: bytes, kind: str, subject: str) -> None:
        if not fits(value, self.max_bytes, kind, subject):
            return
        self._put(
            keys=[_LRU, _META, _BYTES],
            args=[PREFIX, self.max_bytes, key, value, self.ttl_seconds, _now_us(), f"{kind} {len(value)} {subject}"],
        )
        log.debug("result cache: stored %s entry %s for %s (%d bytes)", kind, key, subject, len(value))

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        lock = self.client.lock(
            f"{PREFIX}lock:{key}",
            timeout=_LOCK_TTL_S,
            sleep=0.05,
            blocking_timeout=_LOCK_WAIT_S,
            thread_local=False,  # the renewing thread uses the holder's token
        )
        try:
            held = lock.acquire()
        except redis.RedisError as e:  # no Redis, no coordination: the scan goes ahead (and the put will fail too)
            log.debug("result cache: no lock for %s (%s); going ahead without it", key, e)
            held = False
        if not held:
            yield
            return
        done = threading.Event()

        def renew() -> None:
            while not done.wait(_LOCK_TTL_S / 3):
                try:
                    lock.reacquire()
                except redis.RedisError as e:  # lost (expired, or Redis restarted): another may scan it too
                    log.debug("result cache: lock for %s lost (%s)", key, e)
                    return

        renewer = threading.Thread(target=renew, name="result-cache-lock", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            with contextlib.suppress(redis.RedisError):
                lock.release()

    @_failures
    def entries(self) -> list[Entry]:
        members = cast(list[tuple[bytes, float]], self.client.zrange(_LRU, 0, -1, withscores=True))
        if not members:
            return []
        metas = cast(list[bytes | None], self.client.hmget(_META, [m for m, _ in members]))
        out = []
        for (key, score), meta in zip(members, metas, strict=True):
            kind, size, subject = _parse_meta(meta)
            out.append(Entry(key.decode(), kind, subject, size, score / 1e6))
        return out

    @_failures
    def stats(self) -> Stats:
        metas = [_parse_meta(m) for m in cast(list[bytes], self.client.hvals(_META))]
        return Stats(
            self.where(),
            sum(1 for kind, _, _ in metas if kind == codec.LAYER),
            sum(1 for kind, _, _ in metas if kind == codec.IMAGE),
            int(cast(bytes | None, self.client.get(_BYTES)) or 0),
            self.max_bytes,
        )

    @_failures
    def prune(self, max_bytes: int | None = None) -> int:
        limit = self.max_bytes if max_bytes is None else max_bytes
        return int(self._prune(keys=[_LRU, _META, _BYTES], args=[PREFIX, limit]))

    @_failures
    def clear(self) -> int:
        removed = 0
        for name in self.client.scan_iter(match=PREFIX + "v:*", count=1000):
            removed += int(self.client.delete(name))
        self.client.delete(_LRU, _META, _BYTES)
        return removed

    def close(self) -> None:
        self.client.close()


def redact(url: str) -> str:
    """The URL without its password, for logs and `layerscan cache stats`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _parse_meta(meta: bytes | None) -> tuple[str, int, str]:
    if meta is None:
        return "?", 0, ""
    kind, size, subject = meta.decode().split(" ", 2)
    return kind, int(size), subject


def _now_us() -> int:
    return time.time_ns() // 1000  # exact in a double (the sorted set's score) for centuries
