"""Secret findings and retrieve_files over real scans of small layers:
secrets in files a later layer deleted or replaced, secrets reached through links
(keyed by the link, as Anchore does), a layer used twice, and Anchore's retrieve rules."""

from __future__ import annotations

import dataclasses
import io
import tarfile

from analyzed import ENGINE
from layerscan.config import Config, RetrieveFiles
from layerscan.filetree import FinalFile, ImageFiles
from layerscan.findings import secret_findings
from layerscan.pipeline import scan_options
from layerscan.retrieve import retrieve_files
from layerscan.scan import scan_layer
from layerscan.scan.globs import GlobSet
from layerscan.scan.model import LayerResult

AWS = b"aws_access_key_id = AKIAZ4QW7R2M9XK3T6BV\n"
GHP = b"token: ghp_R7kLm2Qx9Tz4Vb8Nc1Hd6Fs3Gy5Ua0Ei7KoP\n"
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"
CONFIG = Config()
RULES = (*CONFIG.secret_rules, *CONFIG.content_rules)


def layer(*members: tuple[str, str, bytes | str], config: Config = CONFIG) -> LayerResult:
    """members: (kind, path, content or link target); kind in file, dir, symlink, hardlink, whiteout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, path, data in members:
            name = path.lstrip("/")
            if kind == "whiteout":
                head, _, base = name.rpartition("/")
                name = f"{head}/.wh.{base}"
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data).lstrip("/")
            payload = data if kind == "file" else b""
            ti.size = len(payload)  # type: ignore[arg-type]
            tf.addfile(ti, io.BytesIO(payload) if kind == "file" else None)  # type: ignore[arg-type]
    return scan_layer(buf.getvalue(), scan_options(config, RULES), engine=ENGINE)


def final_table(results: list[LayerResult], surviving: dict[str, int]) -> ImageFiles:
    """The squashed table, stated explicitly: path -> the layer whose entry survives."""
    files = {}
    for path, i in surviving.items():
        rec = next(r for r in results[i].entries if r.path == path)
        if rec.type == "hardlink":  # carries its target's content, from the link's own layer
            target = next(t for t in results[i].entries if t.path == rec.link)
            rec = rec._replace(size=target.size, md5=target.md5, sha1=target.sha1, sha256=target.sha256)
        files[path] = FinalFile(rec, i)
    captured = {p: c for r in results for p, c in r.captured.items() if p in files}
    return ImageFiles.of(files, captured)


def findings(results, files):
    return {(f.path, f.rule, f.line): f for f in secret_findings(results, files, RULES)}


def test_deleted_replaced_and_linked_secrets() -> None:
    l0 = layer(
        ("dir", "/app", b""),
        ("dir", "/etc", b""),
        ("dir", "/root", b""),
        ("file", "/app/.env", b"# env\n" + AWS),
        ("file", "/app/notes.txt", b"hello\n" + GHP),
        ("file", "/root/key", KEY),
        ("hardlink", "/root/key.hard", "/root/key"),
        ("file", "/root/gone", KEY),
        ("hardlink", "/root/gone.hard", "/root/gone"),
    )
    l1 = layer(
        ("whiteout", "/app/.env", b""),
        ("whiteout", "/root/gone", b""),
        ("file", "/app/notes.txt", b"hello\nno token here\n"),
        ("symlink", "/etc/key", "/root/key"),
        ("symlink", "/etc/rel-key", "../root/key"),
        ("symlink", "/etc/loop-a", "loop-b"),
        ("symlink", "/etc/loop-b", "loop-a"),
    )
    results = [l0, l1]
    files = final_table(
        results,
        {
            "/app": 0,
            "/etc": 0,
            "/root": 0,
            "/app/notes.txt": 1,
            "/root/key": 0,
            "/root/key.hard": 0,
            "/root/gone.hard": 0,
            "/etc/key": 1,
            "/etc/rel-key": 1,
            "/etc/loop-a": 1,
            "/etc/loop-b": 1,
        },
    )
    got = findings(results, files)

    deleted = got[("/app/.env", "aws-access-key-id", 2)]
    assert (deleted.layer, deleted.in_final_image) == (0, False)
    replaced = got[("/app/notes.txt", "github-pat", 2)]
    assert (replaced.layer, replaced.in_final_image) == (0, False)
    assert "AKIAZ4QW7R2M9XK3T6BV" not in deleted.masked

    assert not got[("/root/gone", "private-key", 1)].in_final_image
    # A hardlink to a file deleted later still holds the content in the final image.
    for path in ("/root/key", "/root/key.hard", "/root/gone.hard", "/etc/key", "/etc/rel-key"):
        f = got[(path, "private-key", 1)]
        assert (f.layer, f.in_final_image) == (0, True), path
    assert not any(p.startswith("/etc/loop") for p, _, _ in got)  # loops end quietly


def test_layer_used_twice_reports_once_at_its_last_position() -> None:
    base = layer(("file", "/srv/token", GHP))
    middle = layer(("file", "/srv/other", b"x\n"))
    results = [base, middle, base]
    files = final_table(results, {"/srv/token": 2, "/srv/other": 1})
    hits = [f for f in secret_findings(results, files, RULES) if f.rule == "github-pat"]
    assert [(f.path, f.layer, f.in_final_image) for f in hits] == [("/srv/token", 2, True)]


def test_kinds_stay_apart() -> None:
    from layerscan.scan.rules import parse_anchore_rule

    content = parse_anchore_rule("TODO=.*TODO", kind="content", source="config")
    config = dataclasses.replace(CONFIG, content_rules=(content,))
    rules = (*config.secret_rules, content)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tf:
        body = b"TODO: rotate\n" + GHP
        ti = tarfile.TarInfo("src/a.txt")
        ti.size = len(body)
        tf.addfile(ti, io.BytesIO(body))
    result = scan_layer(data.getvalue(), scan_options(config, rules), engine=ENGINE)
    files = final_table([result], {"/src/a.txt": 0})
    kinds = {(f.rule, f.kind) for f in secret_findings([result], files, rules)}
    assert ("TODO", "content") in kinds and ("github-pat", "secret") in kinds


def test_retrieve_files_follows_anchore() -> None:
    odd = "/etc/we[ir]d*name"
    wanted = ("/etc/passwd", "etc/big.conf", "/etc/link.conf", "/etc/missing", odd)
    config = dataclasses.replace(CONFIG, retrieve_files=RetrieveFiles(file_list=wanted, max_file_size_kb=2))
    l0 = layer(
        ("file", "/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("file", "/etc/big.conf", b"x" * 3000),
        ("symlink", "/etc/link.conf", "passwd"),
        ("file", odd, b"odd\n"),
        config=config,
    )
    files = final_table([l0], {p: 0 for p in ("/etc/passwd", "/etc/big.conf", "/etc/link.conf", odd)})
    # Regular files only (links are not followed), within the size limit, keyed as configured.
    assert retrieve_files(files, config.retrieve_files) == {
        "/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        odd: b"odd\n",
    }


def test_retrieve_paths_are_captured_literally() -> None:
    files = ("/etc/we[ir]d*name", "etc/os", "etc//./x/../hosts")
    config = dataclasses.replace(CONFIG, retrieve_files=RetrieveFiles(file_list=files))
    globs = GlobSet(scan_options(config, RULES).capture_globs)
    assert globs.matches("/etc/we[ir]d*name") and globs.matches("/etc/os") and globs.matches("/etc/hosts")
    assert not globs.matches("/etc/weird-name/x") and not globs.matches("/etc/weird-name")
