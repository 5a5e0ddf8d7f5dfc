"""A real PostgreSQL for tests: Debian's server binaries, a cluster made by initdb in a temp dir,
on a free loopback port, with password authentication (scram-sha-256).

server = PostgresServer()            # started, in a temp dir of its own
url = server.create_database("t1")   # postgresql://layerscan:…@127.0.0.1:PORT/t1
server.stop()

PostgreSQL refuses to run as root, so as root the cluster and the server run as Debian's `postgres`
user, in a directory of its own directly under /tmp.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from registry_harness import free_port, wait_port

USER = "layerscan"


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return pg_bin("initdb") is not None and pg_bin("postgres") is not None


class PostgresServer:
    def __init__(self) -> None:
        # /tmp itself: the test session's TMPDIR, like pytest's, is closed to other users.
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix="layerscan-pg-", dir="/tmp"))
        self.dir = workdir / "pgdata"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        pwfile = workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        owner: dict[str, object] = {}
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for path in (workdir, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
            owner = {"user": pg.pw_uid, "group": pg.pw_gid, "extra_groups": []}
        initdb = [pg_bin("initdb") or "initdb", "-D", str(self.dir), "-U", USER, f"--pwfile={pwfile}"]
        initdb += ["-A", "scram-sha-256", "-E", "UTF8", "--no-sync"]
        made = subprocess.run(initdb, capture_output=True, text=True, **owner)  # type: ignore[call-overload]
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr}")
        args = [pg_bin("postgres") or "postgres", "-D", str(self.dir), "-h", "127.0.0.1", "-p", str(self.port)]
        args += ["-k", str(workdir), "-c", "fsync=off", "-c", "max_connections=200"]
        self._log = (workdir / "postgres.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, **owner)  # type: ignore[call-overload]
        try:
            wait_port("127.0.0.1", self.port, proc=self.proc)
            self._wait_ready(30.0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """The port opens before recovery ends ("the database system is starting up")."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        conn = psycopg.connect(self.url(), autocommit=True)
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: PostgreSQL's smart shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
