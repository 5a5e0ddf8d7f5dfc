"""HTTP Basic authentication for the API, as Anchore's: the user `admin` with
`default_admin_password`, plus every `credentials.users.<name>.password`.

Every path but `/`, `/health` and `/version` needs a valid user (with `require_auth`, the
default). Passwords are compared in constant time, are never logged, and a refusal says
only "Unauthorized", with `WWW-Authenticate` so that browsers and clients ask for them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Config
from ..errors import ConfigError

PUBLIC_PATHS = frozenset({"/", "/health", "/version"})
REALM = "layerscan"
ADMIN = "admin"


def users_of(config: Config) -> dict[str, str]:
    """name -> password: admin (when default_admin_password is set) and credentials.users."""
    users = dict(config.service.users)
    if config.service.default_admin_password is not None:
        users[ADMIN] = config.service.default_admin_password
    return users


def check_users(config: Config, required: bool, key: str) -> None:
    """When `key` (a require_auth setting) is on, at least one user must be able to log in."""
    if required and not users_of(config):
        raise ConfigError(
            f"config: {key} is true but no user can log in: "
            "set default_admin_password (the user admin) or credentials.users.<name>.password"
        )


class BasicAuth:
    """ASGI middleware: let public paths through, check Basic credentials on every other."""

    def __init__(self, app: ASGIApp, users: Mapping[str, str], required: bool = True) -> None:
        self.app = app
        self.required = required
        self._users = {name: password.encode() for name, password in users.items()}
        # Compared against when the user name is unknown, so that the answer takes as long.
        self._decoy = b"\0" * 32

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.required or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        user = self.authenticate(_header(scope, b"authorization"))
        if user is None:
            await _unauthorized(send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    def authenticate(self, header: bytes | None) -> str | None:
        """The user name a valid `Authorization: Basic` header names, else None."""
        if not header:
            return None
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        name_bytes, sep, password = decoded.partition(b":")
        if not sep:
            return None
        name = name_bytes.decode("utf-8", "replace")
        expected = self._users.get(name)
        ok = hmac.compare_digest(password, expected if expected is not None else self._decoy)
        return name if ok and expected is not None else None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def _unauthorized(send: Send) -> None:
    body = json.dumps({"message": "Unauthorized", "httpcode": 401, "detail": {}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
