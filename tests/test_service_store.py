"""The service store on a real SQLite file and on a real PostgreSQL server (started here, see
postgres_harness), through the same tests: images, tags, reports, the queue's leases, workers,
migrations, and claims that stay exclusive across processes."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import multiprocessing.synchronize
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

import postgres_harness
from layerscan.service.exports import ExportError
from layerscan.service.schema import metadata, reports
from layerscan.service.store import LeaseLost, Store, StoreError

EXAMPLE_EXPORT = Path(__file__).resolve().parents[2] / "shared" / "docs" / "anchore-example-export.json"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def add(store: Store, n: int, tag: str | None = None, force: bool = False):
    return store.add_image(
        digest(n),
        f"{n + 1000:064x}",
        tag or f"localhost:5000/app/{n}:latest",
        f"registry:localhost:5000/app/{n}@{digest(n)}",
        b'{"schemaVersion": 2}',
        b'{"architecture": "amd64"}',
        digest(n),
        force=force,
    )


@pytest.fixture(scope="module")
def postgres():
    if not postgres_harness.available():
        pytest.skip("PostgreSQL's server binaries are not installed (scripts/bootstrap.sh installs postgresql)")
    server = postgres_harness.PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'layerscan.db'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t{time.monotonic_ns()}")


@pytest.fixture
def store(db_url: str):
    s = Store.open(db_url)
    yield s
    s.close()


def test_schema_from_migrations_matches_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
    found = inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in found.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    Store.open(f"sqlite:///{tmp_path / 'state' / 'layerscan.db'}").close()
    db = sqlite3.connect(tmp_path / "state" / "layerscan.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_postgresql_urls_use_psycopg_3_and_never_show_the_password(postgres) -> None:
    url = postgres.create_database(f"t{time.monotonic_ns()}")
    with Store.open(url) as s:
        assert s.engine.dialect.driver == "psycopg"
    with pytest.raises(StoreError) as info:
        Store.open(url.replace(postgres.password, "wrong-password"))
    assert "password authentication failed" in str(info.value)
    assert postgres.password not in str(info.value) and "wrong-password" not in str(info.value)


def test_reopening_keeps_everything(db_url: str) -> None:
    url = db_url
    with Store.open(url) as s:
        add(s, 1)
        s.put_report(digest(1), "layerscan", b"{}")
    with Store.open(url) as s:
        assert s.get_image(digest(1)) is not None
        assert s.get_report(digest(1), "layerscan") == b"{}"


def test_bad_urls_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("no url at all")
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(StoreError):
        Store.open(f"sqlite:///{tmp_path}/plain-file/under/it.db")  # its directory cannot be made
    with pytest.raises(StoreError) as info:
        Store.open("postgresql+nosuchdriver://user:hunter2@localhost/db")
    assert "hunter2" not in str(info.value)


def test_add_image_then_tags_and_force(store: Store) -> None:
    rec = add(store, 1)
    assert rec.analysis_status == "not_analyzed"
    assert rec.image_status == "active"
    assert rec.fulltags == ("localhost:5000/app/1:latest",)
    assert rec.parent_digest == digest(1)
    assert rec.created_at.tzinfo is datetime.UTC
    assert rec.manifest == b'{"schemaVersion": 2}'
    rec = add(store, 1, tag="localhost:5000/app/1:v2")
    assert rec.fulltags == ("localhost:5000/app/1:latest", "localhost:5000/app/1:v2")
    assert len(store.list_images()) == 1
    assert [r.image_digest for r in store.list_images(fulltag="localhost:5000/app/1:v2")] == [digest(1)]
    assert store.list_images(fulltag="localhost:5000/other:latest") == []
    assert store.get_image_by_id(f"{1001:064x}") == store.get_image(digest(1))

    job = store.claim("w1", 60)
    assert job is not None
    store.complete(job, {"os": 3}, {"anchore": b"[]", "layerscan": b"{}"})
    assert add(store, 1).analysis_status == "analyzed"  # re-adding without force keeps the analysis
    rec = add(store, 1, force=True)
    assert (rec.analysis_status, rec.attempts) == ("not_analyzed", 0)
    assert store.get_report(digest(1), "anchore") == b"[]"  # the old report stays until the new one


def test_reports_are_compressed_and_deleted_with_their_image(store: Store) -> None:
    add(store, 1)
    data = json.dumps({"files": ["/etc/x"] * 10000}).encode()
    store.put_report(digest(1), "anchore", data)
    store.put_report(digest(1), "anchore", data + b" ")  # replaces
    assert store.get_report(digest(1), "anchore") == data + b" "
    assert store.get_report(digest(1), "layerscan") is None
    with store.engine.connect() as conn:
        stored, size = conn.execute(select(func.length(reports.c.data), reports.c.size)).one()
    assert size == len(data) + 1 and stored < size / 20
    with pytest.raises(ValueError):
        store.put_report(digest(1), "sbom", b"")
    assert store.delete_image(digest(1)) is True
    assert store.delete_image(digest(1)) is False
    assert store.get_report(digest(1), "anchore") is None
    assert store.list_images() == []


def test_queue_order_lease_and_complete(store: Store) -> None:
    for n in range(3):
        add(store, n)
    assert store.queue_depth() == {"not_analyzed": 3, "analyzing": 0, "analyzed": 0, "analysis_failed": 0}
    jobs = [store.claim("w1", 60) for _ in range(3)]
    assert [j.image_digest for j in jobs if j] == [digest(0), digest(1), digest(2)]  # oldest first
    assert store.claim("w2", 60) is None
    rec = store.get_image(digest(0))
    assert rec is not None and (rec.analysis_status, rec.worker_id, rec.attempts) == ("analyzing", "w1", 1)
    assert jobs[0] is not None and jobs[0].source == f"registry:localhost:5000/app/0@{digest(0)}"
    store.renew(jobs[0])
    store.complete(jobs[0], {"os": 5, "files": 9}, {"anchore": b"[1]"})
    rec = store.get_image(digest(0))
    assert rec is not None
    assert (rec.analysis_status, rec.worker_id, rec.summary) == ("analyzed", None, {"os": 5, "files": 9})
    assert rec.analyzed_at is not None
    assert store.queue_depth()["analyzed"] == 1


def test_an_expired_lease_is_claimed_again_and_the_stale_claim_cannot_finish(store: Store) -> None:
    add(store, 1)
    stale = store.claim("dead", 0.2)
    assert stale is not None
    assert store.claim("w2", 60) is None  # still leased
    time.sleep(0.3)
    fresh = store.claim("w2", 60)
    assert fresh is not None and fresh.image_digest == digest(1) and fresh.attempts == 2
    for act in (lambda: store.renew(stale), lambda: store.complete(stale, {}, {"anchore": b"x"})):
        with pytest.raises(LeaseLost):
            act()
    with pytest.raises(LeaseLost):
        store.fail(stale, "boom", 3)
    assert store.get_report(digest(1), "anchore") is None
    store.complete(fresh, {}, {"anchore": b"y"})
    assert store.get_report(digest(1), "anchore") == b"y"


def test_failures_requeue_until_max_attempts(store: Store) -> None:
    add(store, 1)
    add(store, 2)
    job = store.claim("w", 60)
    assert job is not None and job.image_digest == digest(1)
    assert store.fail(job, "registry said 500", max_attempts=2) == "not_analyzed"
    job = store.claim("w", 60)
    assert job is not None and job.image_digest == digest(2)  # a failed job goes to the back
    store.release(job)
    assert store.get_image(digest(2)).attempts == 0  # type: ignore[union-attr]
    job = store.claim("w", 60)
    assert job is not None and job.image_digest == digest(2)  # a released job keeps its place
    store.complete(job, {}, {})
    job = store.claim("w", 60)
    assert job is not None and job.image_digest == digest(1) and job.attempts == 2
    assert store.fail(job, "registry said 500 again", max_attempts=2) == "analysis_failed"
    rec = store.get_image(digest(1))
    assert rec is not None
    assert (rec.analysis_status, rec.last_error, rec.attempts) == ("analysis_failed", "registry said 500 again", 2)
    assert store.claim("w", 60) is None
    assert add(store, 1, force=True).analysis_status == "not_analyzed"


def test_a_job_whose_workers_keep_dying_fails(store: Store) -> None:
    add(store, 1)
    for _ in range(2):
        assert store.claim("doomed", 0.05, max_attempts=2) is not None
        time.sleep(0.1)
    assert store.claim("w", 60, max_attempts=2) is None
    rec = store.get_image(digest(1))
    assert rec is not None and rec.analysis_status == "analysis_failed"
    assert "abandoned 2 times" in rec.last_error


def test_requeue_expired_puts_dead_workers_jobs_back_or_fails_them(store: Store) -> None:
    add(store, 1)
    add(store, 2)
    live = store.claim("alive", 60, digest=digest(2))
    assert live is not None and live.image_digest == digest(2)
    dead = store.claim("dead", 0.05, digest=digest(1))
    assert dead is not None and store.claim("other", 60, digest=digest(1)) is None  # leased: not claimable
    time.sleep(0.1)
    assert store.requeue_expired(max_attempts=2) == [digest(1)]  # the live lease stays
    rec = store.get_image(digest(1))
    assert rec is not None and rec.analysis_status == "not_analyzed" and rec.worker_id is None
    with pytest.raises(LeaseLost):
        store.complete(dead, {}, {"anchore": b"{}"})  # the dead claim cannot store anything
    again = store.claim("w", 0.05, digest=digest(1))
    assert again is not None and again.attempts == 2
    time.sleep(0.1)
    assert store.requeue_expired(max_attempts=2) == []
    rec = store.get_image(digest(1))
    assert rec is not None and rec.analysis_status == "analysis_failed" and "abandoned 2 times" in rec.last_error
    store.complete(live, {"files": 1}, {"anchore": b"{}"})
    assert store.get_report(digest(2), "anchore") == b"{}"


def test_workers(store: Store) -> None:
    store.register_worker("w1", "host-a", 8084, 2)
    store.register_worker("w2", "host-b", 0, 1)
    store.worker_heartbeat("w1", 2)
    found = {w.worker_id: w for w in store.list_workers(stale_after=30)}
    assert (found["w1"].busy, found["w1"].status, found["w1"].port) == (2, "up", 8084)
    time.sleep(0.2)
    store.worker_heartbeat("w1", 1)
    found = {w.worker_id: w for w in store.list_workers(stale_after=0.1)}
    assert (found["w1"].status, found["w2"].status) == ("up", "down")
    store.unregister_worker("w2")
    assert [w.worker_id for w in store.list_workers()] == ["w1"]


def test_import_analysis(store: Store) -> None:
    if not EXAMPLE_EXPORT.is_file():
        pytest.skip(f"the example export is missing at {EXAMPLE_EXPORT}")
    data = EXAMPLE_EXPORT.read_bytes()
    rec = store.import_analysis(data)
    assert rec.image_digest == "sha256:185518070891758909c9f839cf4ca393ee977ac378609f700f60a771a2dfe321"
    assert rec.image_id == "a24bb4013296f61e89ba57005a7b3e52274d8edd3ae2077d04395f806b63d83e"
    assert rec.fulltags == ("docker.io/library/alpine:3.12",)
    assert rec.analysis_status == "analyzed"
    assert rec.summary["layers"] == 1 and rec.summary["files"] == 5 and rec.summary["os"] == 1
    assert store.get_report(rec.image_digest, "anchore") == data
    with pytest.raises(ExportError, match="not an Anchore image export"):
        store.import_analysis(b'{"image": {}}')
    with pytest.raises(ExportError, match="not JSON"):
        store.import_analysis(b"[")


def _claim_all(url: str, worker: str, out: multiprocessing.Queue, start: multiprocessing.synchronize.Barrier) -> None:
    store = Store.open(url)
    start.wait(60)  # every worker ready: the first one started has no head start on the queue
    got = []
    while (job := store.claim(worker, 60)) is not None:
        got.append(job.image_digest)
        store.complete(job, {}, {})
        time.sleep(0.002)  # as an analysis would, it lets the others claim meanwhile
    store.close()
    out.put((worker, got))


def test_claims_are_exclusive_across_processes(db_url: str) -> None:
    url = db_url
    with Store.open(url) as s:
        for n in range(60):
            add(s, n)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_claim_all, args=(url, f"w{i}", out, start)) for i in range(4)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    claimed = [d for got in results.values() for d in got]
    assert sorted(claimed) == [digest(n) for n in range(60)]  # each exactly once
    assert sum(1 for got in results.values() if got) >= 2  # they really competed


def _open_and_count(url: str, out: multiprocessing.Queue) -> None:
    with Store.open(url) as s:
        out.put(sum(s.queue_depth().values()))


def test_processes_opening_a_new_database_together_migrate_it_once(db_url: str) -> None:
    url = db_url
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_and_count, args=(url, out)) for _ in range(4)]
    for p in procs:
        p.start()
    assert [out.get(timeout=120) for _ in procs] == [0, 0, 0, 0]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with Store.open(url) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
