"""What the API tests run: `layerscan serve` as a real process (a WorkerProcess with an API port),
anchore-cli 0.9.3 from its own venv (made by `make anchore-cli`), and an HTTP client with
the admin's credentials."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests
import yaml

from conftest import ROOT
from registry_harness import free_port, wait_port
from service_harness import WorkerProcess, service_config

ADMIN_PASSWORD = "test-admin-pass"
ANCHORE_CLI = ROOT / ".venv-anchorecli" / "bin" / "anchore-cli"


def api_config(directory: Path, registry_host: str, *, api_port: int, **analyzer: object) -> Path:
    """service_config plus the API's settings: its port, the admin's password and a second user."""
    path = service_config(directory, registry_host, **analyzer)
    doc = yaml.safe_load(path.read_text())
    doc["default_admin_password"] = ADMIN_PASSWORD
    doc["credentials"] = {"users": {"reader": {"password": "reader-pass"}}}
    doc["services"]["apiext"] = {"listen": "127.0.0.1", "port": api_port}
    path.write_text(yaml.safe_dump(doc))
    return path


def api_only(config: Path) -> Path:
    """The same config with its analyzer off (services.analyzer.enabled: false), beside it as serve.yaml."""
    doc = yaml.safe_load(config.read_text())
    doc["services"]["analyzer"]["enabled"] = False
    path = config.with_name("serve.yaml")
    path.write_text(yaml.safe_dump(doc))
    return path


class ServeProcess(WorkerProcess):
    """`layerscan serve --config CONFIG`, its log in a file; `url` is the API's /v1 base."""

    def __init__(self, config: Path, port: int, name: str = "serve") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log_path = config.parent / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "layerscan", "serve", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
        self.worker_prefix = f"{socket.gethostname()}-{self.proc.pid}-"  # its in-process analyzer's id
        try:
            wait_port("127.0.0.1", port, timeout=30, proc=self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"layerscan serve did not start:\n{self.log()}") from None


@contextlib.contextmanager
def serving(directory: Path, registry_host: str, **analyzer: object) -> Iterator[ServeProcess]:
    """`layerscan serve` on a free port with api_config's settings, stopped at the end."""
    port = api_port()
    serve = ServeProcess(api_config(directory, registry_host, api_port=port, **analyzer), port)
    try:
        yield serve
    finally:
        serve.stop()


def admin_session() -> requests.Session:
    s = requests.Session()
    s.auth = ("admin", ADMIN_PASSWORD)
    return s


def api_port() -> int:
    return free_port()


def anchore_cli() -> Path:
    """anchore-cli 0.9.3 in its own venv (`make anchore-cli` makes it once; later runs reuse it)."""
    if not ANCHORE_CLI.exists():
        subprocess.run(["make", "-s", "anchore-cli"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    return ANCHORE_CLI


def run_cli(url: str, *args: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> subprocess.CompletedProcess:
    """anchore-cli with its config in the environment, as its documentation sets it up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANCHORE_CLI_")}
    env.update(
        ANCHORE_CLI_URL=url, ANCHORE_CLI_USER=user, ANCHORE_CLI_PASS=password, HOME=str(ROOT / ".venv-anchorecli")
    )
    return subprocess.run([str(anchore_cli()), *args], capture_output=True, text=True, env=env, timeout=300)
