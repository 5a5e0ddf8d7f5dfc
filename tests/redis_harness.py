"""A real Redis for tests: Debian's redis-server on a free loopback port, no persistence.

server = RedisServer(workdir, password="…")   # started; server.url is redis://:…@127.0.0.1:PORT/0
server.restart()                           # the same port, empty (no persistence): a lost broker
server.stop()
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from registry_harness import free_port, wait_port

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        args = [REDIS_BIN, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(workdir)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(workdir / "redis.log")]
        if password:
            args += ["--requirepass", password]
        self._args = args
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def restart(self) -> None:
        self.stop()
        self._start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
