"""Registry credentials handed over with one scan request (Harbor's robot account or token), for the
analysis of that one image from that one registry host, by whichever worker takes the job.

They travel through the store, sealed: AES-256-GCM under the service's key, bound to the image
digest and host (a sealed value moved to another row does not open). The key is Anchore's
`keys.secret`, which every process of a deployment shares; without one, a random key kept in
service_dir (mode 0600), which reaches the workers that share that directory (one host). A queued
job itself carries only its source (`registry:host/repo@sha256:…`). The row goes when the job ends
(analyzed or analysis_failed, in the same transaction), when the image is deleted, or after `ttl`.

The analysis gets them as `config.registries[host]` of a copy of the config, so they go to that
host only (and, as any registry credentials, never to where it redirects blob downloads). They
are never logged and never in a repr.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Config, Registry
from ..errors import ConfigError
from ..refs import ImageRef, RefError

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 3600.0  # longer than any analysis waits in the queue and runs; Harbor's robot expires too
KEY_FILE = "job-credentials.key"
_NONCE = 12


class CredentialStore(Protocol):
    """What of the store this module uses (service/store.py)."""

    def put_credentials(self, digest: str, host: str, sealed: bytes, expires_at: datetime.datetime) -> None: ...
    def get_credentials(self, digest: str) -> tuple[str, bytes] | None: ...
    def drop_credentials(self, digest: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A username and password, or a Bearer token."""

    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)


def scoped(config: Config, host: str, credentials: Credentials) -> Config:
    """`config` with `credentials` for `host` only (its other settings for that host kept)."""
    known = config.registries.get(host) or Registry()
    settings = dataclasses.replace(
        known, username=credentials.username, password=credentials.password, token=credentials.token
    )
    return dataclasses.replace(config, registries={**config.registries, host: settings})


def hand_over(
    store: CredentialStore, config: Config, digest: str, host: str, credentials: Credentials, ttl: float = DEFAULT_TTL_S
) -> None:
    """Hold `credentials` for the job that pulls `digest` from `host`, sealed in the store."""
    plain = json.dumps(dataclasses.asdict(credentials)).encode()
    nonce = secrets.token_bytes(_NONCE)
    sealed = nonce + AESGCM(_key(config)).encrypt(nonce, plain, _bound(digest, host))
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=ttl)
    store.put_credentials(digest, host, sealed, expires)


def config_for(store: CredentialStore, spec: str, config: Config) -> Config:
    """`config`, with the credentials held for `spec` when `spec` is that image at that host."""
    ref = _registry_ref(spec)
    if ref is None or ref.digest is None:
        return config
    held = store.get_credentials(ref.digest)
    if held is None:
        return config
    host, sealed = held
    if host != ref.registry:
        return config
    try:
        plain = AESGCM(_key(config)).decrypt(sealed[:_NONCE], sealed[_NONCE:], _bound(ref.digest, host))
    except (InvalidTag, ValueError):
        log.warning(
            "the registry credentials handed over for %s do not open with this process's key "
            "(is keys.secret the same on every host?); pulling with the configured ones",
            ref.digest,
        )
        return config
    return scoped(config, host, Credentials(**json.loads(plain)))


def _bound(digest: str, host: str) -> bytes:
    return f"layerscan job credentials\0{digest}\0{host}".encode()


def _key(config: Config) -> bytes:
    secret = config.service.keys_secret
    if secret:
        return HKDF(hashes.SHA256(), 32, salt=None, info=b"layerscan job credentials").derive(secret.encode())
    return _key_file(Path(config.service.service_dir) / KEY_FILE)


def _key_file(path: Path) -> bytes:
    """The service_dir's key, made once by whichever process needs it first."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    try:
        os.link(tmp, path)  # the first one made wins; a process that lost the race reads it
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(f"{path}: not a 32-byte key; remove it to make a new one")
    return key


def _registry_ref(spec: str) -> ImageRef | None:
    kind, sep, rest = spec.partition(":")
    if not sep or kind != "registry":
        return None
    try:
        return ImageRef.parse(rest)
    except RefError:
        return None
