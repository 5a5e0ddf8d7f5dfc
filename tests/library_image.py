"""A library-heavy image from this machine's files, with planted secrets, for the secret-noise tests.

    layout, planted = build(dest, npm_tree, python_target)

Layers: Debian's jars and Python packages (/usr/share/java, /usr/lib/python3/dist-packages), the
running venv's site-packages and a `pip install --target` tree (botocore and friends) as an app's
venv, an `npm install` tree as its node_modules, then the app with secrets planted in its code, a
config file and a vendored dependency, a private key, and a last layer deleting that key. Files
over MAX_FILE are left out, so that many library files, not a few binaries, fill the image, and
each tree has a budget, so that the image stays near 350 MB whatever the venv holds.
"""

from __future__ import annotations

import io
import os
import sys
import sysconfig
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import peers  # noqa: E402 - benchmarks/peers.py: the streaming layer and layout writers, shared

MAX_FILE = 4 << 20
VENV_MB = 220  # botocore and friends whole, then as much of this venv as fits
APP_VENV = "/app/venv/lib/python3.11/site-packages"
MTIME = 1_700_000_000


class Planted(NamedTuple):
    path: str
    line: int
    deleted: bool = False  # in a file a later layer deletes


# Real formats, random values (not examples, not patterned), as a developer would commit them.
GITHUB_PAT = "ghp_" + "R8fKq2Zs7LmW4xTb9NcJ3vYh6PdQ1gUe5aXo"
AWS_KEY_ID = "AKIA" + "Q3ZT7WNM2KX5RVLD"
AWS_SECRET = "h7Gk2Lq9" + "Zr4Tw8Vb1Nc6Xm3Pd5Fs0Jy2Ke7Ua9Hq"
SLACK_TOKEN = "xoxb-" + "482910573621-5920184736251-Qz8Rk3Tn7Wb2Lm5Xc9Vd4Fh6"
STRIPE_KEY = "sk_live_" + "51Hq8ZtR2kLmN4vXwY7pQ3sD9fGhJ6bC"

APP_FILES: dict[str, bytes] = {
    "app/src/shop/settings.py": (
        b'"""Settings of the shop service."""\nimport os\n\nDEBUG = False\n'
        b'GITHUB_TOKEN = "' + GITHUB_PAT.encode() + b'"  # TODO move to the vault\n'
        b'DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://${DB_USER}:${DB_PASSWORD}@db/shop")\n'
    ),
    "app/config/aws.ini": (
        b"[default]\nregion = eu-west-1\n"
        b"aws_access_key_id = " + AWS_KEY_ID.encode() + b"\n"
        b"aws_secret_access_key = " + AWS_SECRET.encode() + b"\n"
    ),
    # A dependency vendored into the app's own tree (its code, not its docs or tests).
    "app/node_modules/@shop/notify/lib/slack.js": (
        b"'use strict';\nconst { WebClient } = require('@slack/web-api');\n"
        b"const client = new WebClient('" + SLACK_TOKEN.encode() + b"');\nmodule.exports = client;\n"
    ),
    "app/vendor/payments/client.py": (b"import stripe\n\nstripe.api_key = '" + STRIPE_KEY.encode() + b"'\n"),
}
PLANTED_IN_APP = (
    Planted("/app/src/shop/settings.py", 5),
    Planted("/app/config/aws.ini", 3),
    Planted("/app/config/aws.ini", 4),
    Planted("/app/node_modules/@shop/notify/lib/slack.js", 3),
    Planted("/app/vendor/payments/client.py", 3),
)
DELETED_KEY = "root/.ssh/id_rsa"


def private_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name + "/")
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
    return info


def write_files_layer(tar_path: Path, files: dict[str, bytes], whiteouts: Iterable[str] = ()) -> None:
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        seen: set[str] = set()
        names = [*files, *(f"{os.path.dirname(w)}/.wh.{os.path.basename(w)}" for w in whiteouts)]
        for name in names:
            for parent in _parents(name):
                if parent not in seen:
                    seen.add(parent)
                    tar.addfile(_dir(parent))
            data = files.get(name, b"")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600 if "ssh" in name else 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))


def build(dest: Path, npm_tree: Path, python_target: Path) -> tuple[Path, list[Planted]]:
    """The OCI layout at dest/layout, and the secrets planted in it."""
    layout = dest / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    venv = sysconfig.get_paths()["purelib"]
    # (roots, MB of file data at most): the venv's packages in name order until the budget is spent.
    trees: list[tuple[tuple[peers.Root, ...], int]] = [
        (("/usr/share/java", "/usr/lib/python3/dist-packages"), 100),
        (((str(python_target), APP_VENV), (venv, APP_VENV)), VENV_MB),
        (((str(npm_tree), "/app/node_modules"),), 200),
    ]
    layers = []
    for i, (roots, megabytes) in enumerate(trees):
        plain = dest / f"tree{i}.tar"
        peers.write_layer(plain, roots, budget=megabytes * 1_000_000, max_file=MAX_FILE)
        layers.append(peers.pack_layer(plain, blobs, ""))
    for i, (files, whiteouts) in enumerate((({**APP_FILES, DELETED_KEY: private_key()}, ()), ({}, (DELETED_KEY,)))):
        plain = dest / f"app{i}.tar"
        write_files_layer(plain, files, whiteouts)
        layers.append(peers.pack_layer(plain, blobs, ""))
    peers.write_layout(layout, layers)
    planted = [*PLANTED_IN_APP, Planted("/" + DELETED_KEY, 1, deleted=True)]
    return layout, planted
