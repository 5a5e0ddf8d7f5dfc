"""Registry credentials (where they come from) and authorization (Basic, Bearer tokens).

Credentials are looked up in Docker's order of precedence, extended with layerscan's
own: explicit (`--username`/`--password-stdin`, carried in Config.registries), the
environment, `~/.docker/config.json` (auths, credHelpers, credsStore), then the
containers auth file. No secret value is ever logged or put in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from ..config import Config
from ..errors import ExitCode, SourceError
from ..refs import DOCKER_HUB

log = logging.getLogger(__name__)

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB)
_HELPER_TIMEOUT = 30
_TOKEN_TIMEOUT = (10, 30)
_DEFAULT_TOKEN_LIFETIME = 60  # seconds, as the token spec says when expires_in is absent
_EXPIRY_MARGIN = 10  # renew a little before the registry would refuse the token


class AuthError(SourceError):
    """The registry refused us, or credentials could not be read: a source error with its own exit code."""

    exit_code = ExitCode.AUTH


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    identity_token: str = dataclasses.field(default="", repr=False)  # an OAuth2 refresh token
    registry_token: str = dataclasses.field(default="", repr=False)  # a Bearer access token, sent as is
    source: str = ""  # where they were found, for messages


# ---------------------------------------------------------------------------- where credentials come from


def find_credentials(
    registry: str,
    config: Config,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials | None:
    """The first credentials for `registry` (host[:port]) in precedence order; None: anonymous."""
    env = os.environ if env is None else env
    explicit = config.registries.get(registry)
    if explicit is not None and explicit.token:
        return Credentials(registry_token=explicit.token, source="a registry token given for this job")
    if explicit is not None and explicit.username:
        return Credentials(explicit.username, explicit.password or "", source="explicit credentials")
    return _from_env(registry, env) or _from_docker_config(registry, env, home) or _from_containers_auth(registry, env)


def _env_suffix(registry: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", registry).upper()


def _from_env(registry: str, env: Mapping[str, str]) -> Credentials | None:
    # The per-registry pair wins over the general one.
    for prefix in (f"LAYERSCAN_REGISTRY_{_env_suffix(registry)}_", "LAYERSCAN_REGISTRY_"):
        user, password = env.get(prefix + "USERNAME"), env.get(prefix + "PASSWORD")
        if user:
            return Credentials(user, password or "", source=f"environment {prefix}USERNAME")
    return None


def _lookup_keys(registry: str) -> tuple[str, ...]:
    if registry == DOCKER_HUB:
        return _HUB_KEYS
    return (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/", f"https://{registry}/v2/")


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuthError(f"credentials file {path} cannot be read: {type(e).__name__}") from None
    if not isinstance(doc, dict):
        raise AuthError(f"credentials file {path} is not a JSON object")
    return doc


def _from_auths(doc: dict, registry: str, path: Path) -> Credentials | None:
    auths = doc.get("auths") or {}
    if not isinstance(auths, dict):
        raise AuthError(f"credentials file {path}: 'auths' is not an object")
    for key in _lookup_keys(registry):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        where = f"{path} auths[{key!r}]"
        user, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                sep = ""
            if not sep:
                raise AuthError(f"{where}: 'auth' is not base64 of user:password")
        token = entry.get("identitytoken", "")
        if token or user:
            return Credentials(user, password, token, source=where)
    return None


def _docker_config_path(env: Mapping[str, str], home: Path | None) -> Path:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return (home or Path(env.get("HOME") or Path.home())) / ".docker" / "config.json"


def _from_docker_config(registry: str, env: Mapping[str, str], home: Path | None) -> Credentials | None:
    path = _docker_config_path(env, home)
    doc = _read_json(path)
    if doc is None:
        return None
    # Docker's order: a registry's credHelper, else the credsStore, else the inline auths.
    helpers = doc.get("credHelpers") or {}
    helper = next((helpers[k] for k in _lookup_keys(registry) if k in helpers), None)
    if helper:
        return _from_helper(helper, registry, env)
    if doc.get("credsStore"):
        found = _from_helper(doc["credsStore"], registry, env)
        if found:
            return found
    return _from_auths(doc, registry, path)


def _from_helper(helper: str, registry: str, env: Mapping[str, str]) -> Credentials | None:
    program = f"docker-credential-{helper}"
    server = "https://index.docker.io/v1/" if registry == DOCKER_HUB else registry
    try:
        proc = subprocess.run(
            [program, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except FileNotFoundError:
        raise AuthError(f"credential helper {program} is configured but not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} did not answer within {_HELPER_TIMEOUT}s") from None
    if proc.returncode != 0:
        # Helpers say "credentials not found in native keychain" on stdout when they have none.
        if b"not found" in proc.stdout.lower() or b"not found" in proc.stderr.lower():
            return None
        raise AuthError(f"credential helper {program} failed with exit code {proc.returncode}")
    try:
        answer = json.loads(proc.stdout)
        user, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper {program} gave an answer that is not its JSON") from None
    where = f"credential helper {program}"
    if user == "<token>":  # Docker's convention for an identity token
        return Credentials(identity_token=secret, source=where)
    return Credentials(user, secret, source=where)


def _from_containers_auth(registry: str, env: Mapping[str, str]) -> Credentials | None:
    if env.get("REGISTRY_AUTH_FILE"):
        path = Path(env["REGISTRY_AUTH_FILE"])
    elif env.get("XDG_RUNTIME_DIR"):
        path = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    else:
        return None
    doc = _read_json(path)
    return _from_auths(doc, registry, path) if doc else None


# ---------------------------------------------------------------------------- WWW-Authenticate


@dataclasses.dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "bearer", "basic"
    params: dict[str, str]


_CHALLENGE_TOKEN = re.compile(
    r"""\s*,?\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)|\s+[A-Za-z0-9._~+/-]+=*(?=\s*(?:,|$)))?"""
)


def parse_www_authenticate(header: str) -> list[Challenge]:
    """RFC 7235 challenges: `Bearer realm="…",service="…",scope="…", Basic realm="…"`.

    A name followed by `=` is a parameter of the current challenge; any other name
    starts a new challenge (a token68 after it is skipped: no registry scheme uses one).
    """
    challenges: list[Challenge] = []
    pos = 0
    while (m := _CHALLENGE_TOKEN.match(header, pos)) and m.end() > pos:
        pos = m.end()
        name, is_param, value = m.group(1), m.group(2) and m.group(2).lstrip().startswith("="), m.group(3)
        if is_param and challenges:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1].params[name.lower()] = value
        elif not is_param:
            challenges.append(Challenge(name.lower(), {}))
    return challenges


# ---------------------------------------------------------------------------- authorizing requests


@dataclasses.dataclass
class _Token:
    value: str
    expires: float  # time.monotonic()


class RegistryAuth:
    """Authorization headers for one registry, learnt from its challenges; thread-safe.

    Bearer tokens are cached per scope until shortly before they expire, and fetched
    again when the registry answers 401 to one.
    """

    def __init__(
        self, session: requests.Session, registry: str, credentials: Credentials | None, verify: bool | str
    ) -> None:
        self._session = session
        self._registry = registry
        self._credentials = credentials
        self._verify = verify
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._bearer: dict[str, str] = {}
        self._tokens: dict[str, _Token] = {}

    def header(self, scope: str) -> str | None:
        """The Authorization value for a request needing `scope`, or None (anonymous, or not yet challenged)."""
        with self._lock:
            if self._credentials and self._credentials.registry_token:
                return f"Bearer {self._credentials.registry_token}"  # sent at once: no challenge to learn
            if self._scheme == "basic" and self._credentials:
                return _basic(self._credentials)
            if self._scheme != "bearer":
                return None
            token = self._tokens.get(scope)
            if token is None or token.expires <= time.monotonic():
                token = self._fetch_token(scope)
            return f"Bearer {token.value}"

    def challenged(self, response: requests.Response, scope: str) -> None:
        """Learn from a 401 so that the retried request carries what the registry asks for.

        A refused token is dropped, so the retry fetches a new one. Raises AuthError when
        retrying cannot help (Basic without credentials, or no supported challenge).
        """
        if self._credentials and self._credentials.registry_token:
            raise self.refused("the registry token it was given")  # nothing else to try
        challenges = {c.scheme: c for c in parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))}
        with self._lock:
            if "bearer" in challenges:
                params = challenges["bearer"].params
                if "realm" not in params:
                    raise AuthError(f"registry {self._registry}: Bearer challenge without a realm")
                self._scheme, self._bearer = "bearer", dict(params)
                self._tokens.pop(scope, None)
                return
            if "basic" in challenges:
                if self._credentials is None or not self._credentials.username:
                    raise AuthError(f"registry {self._registry} requires a username and password; none were found")
                self._scheme = "basic"
                return
        raise AuthError(f"registry {self._registry} answered 401 with no challenge layerscan supports")

    def refused(self, what: str) -> AuthError:
        """The error for a request still unauthorized after learning from the challenge."""
        source = self._credentials.source if self._credentials else "anonymous"
        return AuthError(f"registry {self._registry} refused {what} (credentials: {source})")

    def _fetch_token(self, scope: str) -> _Token:
        realm = self._bearer["realm"]
        params = {k: v for k, v in (("service", self._bearer.get("service", "")), ("scope", scope)) if v}
        creds = self._credentials
        try:
            if creds and creds.identity_token:
                # OAuth2 refresh-token grant, as Docker does with an identity token.
                resp = self._session.post(
                    realm,
                    data={
                        **params,
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "client_id": "layerscan",
                    },
                    verify=self._verify,
                    timeout=_TOKEN_TIMEOUT,
                )
            else:
                auth = (creds.username, creds.password) if creds and creds.username else None
                resp = self._session.get(realm, params=params, auth=auth, verify=self._verify, timeout=_TOKEN_TIMEOUT)
        except requests.RequestException as e:
            raise AuthError(f"token server {realm}: {type(e).__name__}") from None
        if resp.status_code in (401, 403):
            raise self.refused(f"a token for {scope!r} at {realm}")
        if resp.status_code != 200:
            raise AuthError(f"token server {realm} answered HTTP {resp.status_code}")
        try:
            doc = resp.json()
            value = doc.get("token") or doc.get("access_token")
            lifetime = int(doc.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            raise AuthError(f"token server {realm} did not answer with a token") from None
        if not value:
            raise AuthError(f"token server {realm} did not answer with a token")
        token = _Token(str(value), time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1))
        self._tokens[scope] = token
        log.debug("got a token for %s from %s, valid %ds", scope, realm, lifetime)
        return token


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
