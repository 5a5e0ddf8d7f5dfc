"""`layerscan analyze SOURCE`: analyze one image and write a report."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import re
import stat
import sys
import tempfile
import textwrap
from collections.abc import Callable
from typing import TextIO

from ..analysis import Analysis
from ..config import Config, Registry, load_config
from ..errors import ConfigError, ExitCode, exit_codes_help
from ..image import Platform
from ..refs import ImageRef
from ..report import FORMATS
from ..scan import ENGINES
from ..sources import registry_reference
from .options import add_config_switch, add_scan_threads, add_shared_options

NAME = "analyze"
HELP = "analyze an image: files, digests, secrets, packages; write a report"
DESCRIPTION = (
    "Analyze one container image: stream every layer once (digests and attributes of "
    "every file, secrets), squash the layers, catalog OS and library packages, and write a report."
)
EPILOG = (
    """\
sources:
  oci-dir:PATH[:REF]     an OCI image layout directory
  oci-archive:FILE[:REF] a tar of an OCI image layout
  docker-archive:FILE[:TAG]
                         the output of 'docker save'
  PATH                   any of the above, detected by its content
  ...:@N                 instead of REF or TAG: the N-th image (from 0) the source lists
  registry:REF           an image in a registry: [HOST[:PORT]/]REPO[:TAG][@sha256:HEX]
  docker://REF           the same (Docker Hub names are normalised as Docker does:
                         debian:12 is registry-1.docker.io/library/debian:12)
  A source holding several images needs REF (an org.opencontainers.image.ref.name, exact)
  or TAG (a RepoTag, normalised as Docker does: app:1.0 is docker.io/library/app:1.0), as
  skopeo reads them; the path ends at the first ':', so a path with ':' is given bare.

registry credentials, first found wins:
  --username with --password-stdin, else the registries section of --config;
  LAYERSCAN_REGISTRY_<HOST>_USERNAME/_PASSWORD (HOST upper-cased, non-alphanumerics
  as _), else LAYERSCAN_REGISTRY_USERNAME/_PASSWORD; ~/.docker/config.json (auths,
  credHelpers, credsStore); $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json.
  None found: anonymous. Passwords are never echoed or logged. TLS is always verified unless the registry is
  listed with --insecure-registry (or insecure_registries in the config).

layer cache (registry sources): with --cache, layer blobs are kept in
  TMP_DIR/anchore_layercache (bounded, least recently used evicted; see
  'layerscan cache --help'), so a layer shared by images is downloaded once; with
  --no-cache, layers stream from the registry into the scanner and no blob is written.
  Default: layer_cache_enable in --config (off without one).

result cache (every source): each layer's scan result and each image's analysis are
  kept per configuration in TMP_DIR/layerscan_resultcache (or the Redis of
  result_cache_url), so a layer is scanned once and an image analyzed once: a layer
  already known is neither downloaded nor read, an image already known comes back
  from its manifest and config alone. A change of rules, limits, capture settings or
  engine is a new configuration. --no-result-cache runs cold and stores nothing.
  Default: result_cache_enable in --config (on without one).

examples:
  layerscan analyze oci-dir:./debian-apps                      JSON report on stdout
  layerscan analyze image.tar --format table                   a summary for humans
  layerscan analyze oci-dir:./app -o app.anchore.json --format anchore
                                                               Anchore Engine image export
  layerscan analyze app.tar --fail-on-secrets -o report.json   CI: exit 1 when a secret is found
  layerscan analyze oci-archive:multi.tar --platform linux/arm64/v8
  layerscan analyze docker-archive:saved.tar:localhost:5000/app:1.0   one image of several
  layerscan analyze registry:docker.io/library/debian:12 --format table
  echo "$TOKEN" | layerscan analyze registry:ghcr.io/acme/app:1.4 \\
      --username ci-bot --password-stdin -o app.json            private image
  layerscan analyze registry:registry.internal:5000/app@sha256:HEX \\
      --ca-cert /etc/ssl/internal-ca.pem                        a private CA
  layerscan analyze registry:localhost:5000/app:dev --insecure-registry localhost:5000
                                                               plain HTTP registry
  layerscan analyze registry:quay.io/org/app:2 --cache --tmp-dir /var/cache/layerscan
                                                               keep layers for the next image
  layerscan analyze oci-dir:./app --no-result-cache            a cold run: scan every layer again

"""
    + textwrap.fill(exit_codes_help(), width=88)
    + "\n"
)
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(?::\d{1,5})?|\[[0-9A-Fa-f:]+\](?::\d{1,5})?")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="the image (see sources below)")
    add_shared_options(p, config="secret rules, retrieve_files, ...", report_format=True)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE (replaced only once the report is complete); default stdout",
    )
    p.add_argument(
        "--platform",
        type=_platform,
        metavar="OS/ARCH[/VARIANT]",
        help="the platform to pick from a multi-platform index (default: the host's, then linux/amd64)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="native",
        help="scan engine: native (fast, the default) or reference (pure Python)",
    )
    p.add_argument(
        "--fail-on-secrets",
        action="store_true",
        help="exit 1 when any secret is found, including in deleted files (for CI)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="with -o, print a one-line JSON summary on stdout: report path, counts, exit code",
    )
    add_config_switch(
        p,
        "--result-cache",
        "use the result cache (overrides result_cache_enable); --no-result-cache: scan every layer, store nothing",
    )
    reg = p.add_argument_group("registry sources")
    reg.add_argument(
        "--username", metavar="USER", help="log in to the image's registry as USER (with --password-stdin)"
    )
    reg.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (or token) for --username from the first line of stdin",
    )
    reg.add_argument(
        "--ca-cert",
        type=_file,
        metavar="FILE",
        help="trust the CA certificates in FILE (PEM) for the image's registry, instead of the system's",
    )
    reg.add_argument(
        "--insecure-registry",
        type=_host,
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk to HOST over plain HTTP, or HTTPS without verification (repeatable)",
    )
    add_config_switch(
        reg,
        "--cache",
        "use the layer cache (overrides layer_cache_enable); --no-cache streams layers, writing no blob",
    )
    add_scan_threads(p, overrides_config=True)
    p.add_argument(
        "--tmp-dir",
        type=_directory,
        metavar="DIR",
        help="scratch space; the caches live in DIR/anchore_layercache and DIR/layerscan_resultcache (overrides tmp_dir)",
    )


def run(args: argparse.Namespace) -> int:
    from ..pipeline import analyze  # here, so other commands never import the whole pipeline

    config = with_options(load_config(args.config), args, _read_password if args.password_stdin else None)
    analysis = analyze(args.source, config, engine=args.engine, platform=args.platform)
    writer = FORMATS[args.format]
    if args.output:
        write_atomically(args.output, lambda out: writer(analysis, out))
    else:
        writer(analysis, sys.stdout)
    secrets = [s for s in analysis.secrets if s.kind == "secret"]
    code = ExitCode.FINDINGS if args.fail_on_secrets and secrets else ExitCode.OK
    if args.json and args.output:
        json.dump(_summary(analysis, args.output, args.format, code), sys.stdout)
        sys.stdout.write("\n")
    return code


def with_options(config: Config, args: argparse.Namespace, read_password: Callable[[], str] | None) -> Config:
    """`config` with the cache and registry options of the command line applied; they win over the file."""
    changes: dict = {}
    if args.tmp_dir is not None:
        changes["tmp_dir"] = args.tmp_dir
    if args.cache is not None:
        changes["layer_cache_enable"] = args.cache
    if args.result_cache is not None:
        changes["result_cache_enable"] = args.result_cache
    if args.secrets_all:
        changes["secrets_all"] = True
    if args.scan_threads is not None:
        changes["scan_threads"] = args.scan_threads
    if args.insecure_registry:
        changes["insecure_registries"] = tuple(dict.fromkeys((*config.insecure_registries, *args.insecure_registry)))
    login = args.username is not None or read_password is not None
    if login or args.ca_cert is not None:
        ref = registry_reference(args.source)
        if ref is None:
            raise ConfigError(
                "--username, --password-stdin and --ca-cert apply to registry:REF or docker://REF sources only"
            )
        host = ImageRef.parse(ref).registry
        per_registry: dict = {}
        if login:
            if not (args.username and read_password):
                raise ConfigError(
                    "--username and --password-stdin go together: give the user name, and the password on stdin"
                )
            per_registry.update(username=args.username, password=read_password())
        if args.ca_cert is not None:
            per_registry["ca_cert"] = args.ca_cert
        settings = dataclasses.replace(config.registries.get(host, Registry()), **per_registry)
        changes["registries"] = {**config.registries, host: settings}
    return dataclasses.replace(config, **changes) if changes else config


def _read_password() -> str:
    """One line of stdin without its line ending, as `docker login --password-stdin` reads it.

    A terminal gets a prompt with echo off, so the password is not shown as it is typed.
    """
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("--password-stdin: stdin gave no password")
    return password


def _summary(a: Analysis, path: str, fmt: str, code: int) -> dict:
    return {
        "report": path,
        "format": fmt,
        "manifest_digest": a.manifest_digest,
        "files": len(a.files),
        "packages": len(a.packages),
        "secrets": sum(1 for s in a.secrets if s.kind == "secret"),
        "secrets_suppressed": dict(a.secrets_suppressed),  # by allow rule, as in the report's stats
        "warnings": len(a.warnings),
        "seconds": round(a.seconds, 3),
        "exit_code": code,
    }


def _platform(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _file(path: str) -> str:
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return os.path.abspath(path)


def _directory(path: str) -> str:
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"not a directory: {path}")
    return os.path.abspath(path)


def _host(text: str) -> str:
    if not _HOST_PORT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST or HOST:PORT (no scheme, no path)")
    return text


def write_atomically(path: str, write: Callable[[TextIO], None]) -> None:
    """Write to a temporary file beside `path`, then rename: a failure never leaves half a report.

    Not onto what is not a regular file (-o /dev/null, a FIFO): a rename would replace the device
    itself with a file (as root, /dev/null for the whole machine), so those are written to directly."""
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as out:
            write(out)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".layerscan-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
