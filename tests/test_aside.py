"""aside.py and jsonstream's Aside: a part of the work in a forked child, the same result as in-process.

A test process has threads (fixtures' servers), where aside() rightly runs in-process; the
forked path is exercised in fresh one-thread interpreters (`python -c`), and by every test
that runs `layerscan analyze` as a command."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from layerscan.aside import aside
from layerscan.report.jsonstream import Arr, Aside, EncodedObj, Json, Obj, dump

ROOT = Path(__file__).resolve().parent.parent
FORKS = sys.platform == "linux" and len(os.sched_getaffinity(0)) >= 2


def run_fresh(code: str) -> str:
    """`code` in a new one-thread interpreter; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(not FORKS, reason="a child is used only on Linux with two or more usable cores")
def test_in_a_one_thread_process_the_work_runs_in_a_child_and_its_answer_comes_back() -> None:
    out = run_fresh(
        """
        import os, signal
        from layerscan.aside import AsideError, aside

        with aside(os.getpid) as later:
            print(later.result() != os.getpid())
        with aside(lambda: {"rows": list(range(100_000))}) as later:  # more than a pipe's buffer
            print(later.result() == {"rows": list(range(100_000))})
        try:
            with aside(lambda: int("x")) as later:
                later.result()
        except ValueError as e:
            print("raised", e)
        try:
            with aside(lambda: os.kill(os.getpid(), signal.SIGKILL)) as later:
                later.result()
        except AsideError as e:
            print(e)
        with aside(lambda: (lambda: None, os.getpid())) as later:  # a value that does not pickle
            print(later.result()[1] == os.getpid())
        """
    )
    assert out.splitlines() == [
        "True",
        "True",
        "raised invalid literal for int() with base 10: 'x'",
        "a helper process died without its result (signal 9)",
        "True",
    ]


@pytest.mark.skipif(not FORKS, reason="a child is used only on Linux with two or more usable cores")
def test_leaving_without_the_result_leaves_no_child() -> None:
    out = run_fresh(
        """
        import os, time
        from layerscan.aside import aside

        try:
            with aside(lambda: time.sleep(60)):
                raise RuntimeError("the caller's own part failed")
        except RuntimeError:
            pass
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            print("no child")
        """
    )
    assert out.strip() == "no child"


@pytest.mark.skipif(not FORKS, reason="a child is used only on Linux with two or more usable cores")
def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    said = tmp_path / "child.pid"
    code = f"""
        import os, time
        from layerscan.aside import aside

        def work():
            with open({str(said)!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)

        with aside(work) as later:
            later.result()
        """
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not said.exists() or not said.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "the child never started"
            time.sleep(0.05)
        child = int(said.read_text())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its killed parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has died; only its reaping is left


def test_with_another_thread_running_the_work_stays_in_this_process() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with aside(os.getpid) as later:
            assert later.result() == os.getpid()
    finally:
        stop.set()
        other.join()


DOCUMENTS: dict[str, Json] = {
    "first member": Obj([Aside([("a", Obj([("x", 1)])), ("b", [1, 2])]), ("c", 3)]),
    "after plain members": Obj([("a", 1), ("b", "two"), Aside([("c", Arr([1, 2]))]), ("d", None)]),
    "after a lazy member": Obj([("a", Obj([("x", 1)])), Aside([("b", EncodedObj(['"k": 1'] * 1000))]), ("c", 3)]),
    "last member": Obj([("a", 1), Aside([("b", 2)])]),
    "two asides": Obj([Aside([("a", 1)]), ("b", 2), Aside([("c", Obj([("d", 4)]))]), ("e", 5)]),
    "nested": Arr(
        [Obj([("image", Obj([("x", 1), Aside([("rows", EncodedObj(f'"{i}": {i}' for i in range(5000)))])]))])]
    ),
}


def in_memory(doc: Json) -> str:
    out = io.StringIO()  # no file descriptor: every Aside is written in place
    dump(doc, out)
    return out.getvalue()


@pytest.mark.parametrize("name", DOCUMENTS)
def test_an_aside_document_is_the_same_written_in_place_and_by_a_child(name: str, tmp_path: Path) -> None:
    expected = in_memory(DOCUMENTS[name])
    assert expected.count('"') % 2 == 0 and ", ," not in expected and "{," not in expected
    target = tmp_path / "doc.json"
    for output, read in ((repr(str(target)), target.read_text), ("1", None)):  # a file, then stdout: a pipe
        code = f"""
            import sys
            sys.path.insert(0, {str(ROOT / "tests")!r})
            import layerscan.report.jsonstream as jsonstream
            from test_aside import DOCUMENTS

            children = []
            forking = jsonstream.aside
            jsonstream.aside = lambda fn: (later := forking(fn), children.append(later.forked))[0]
            with open({output}, "w", closefd={output != "1"}) as out:
                out.write("before ")
                jsonstream.dump(DOCUMENTS[{name!r}], out)
                out.write(" after")
            print(sum(children), file=sys.stderr)
            """
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert (read() if read else done.stdout) == f"before {expected} after"
        assert int(done.stderr) == (1 if FORKS else 0)  # one child at a time: a second Aside is written in place


def test_an_aside_with_no_member_where_nothing_came_before_is_refused() -> None:
    with pytest.raises(ValueError, match="holds no member"):
        in_memory(Obj([Aside([]), ("a", 1)]))


@pytest.mark.skipif(not FORKS, reason="a child is used only on Linux with two or more usable cores")
@pytest.mark.parametrize("image", ["debian-apps", "rpm-sqlite"])
def test_the_catalog_with_its_libraries_in_a_child_equals_the_catalog_in_one_process(
    corpus: Path, image: str, tmp_path: Path
) -> None:
    out = run_fresh(
        f"""
        import dataclasses
        import layerscan.catalog as catalog
        from layerscan import aside as aside_module
        from layerscan.config import load_config
        from layerscan.pipeline import analyze

        children = []
        forking = catalog.aside
        catalog.aside = lambda fn: children.append(aside_module.can_fork()) or forking(fn)
        config = dataclasses.replace(load_config(None), result_cache_enable=False, tmp_dir={str(tmp_path)!r})
        analysis = analyze("oci-dir:{corpus / "images" / image}", config, progress=False)
        in_a_child = catalog.catalog_image(analysis.files)
        aside_module.disable()
        in_process = catalog.catalog_image(analysis.files)
        print(children, in_a_child == in_process, len(in_process.packages))
        """
    )
    children, same, packages = out.rsplit(" ", 2)
    assert children == "[True, True, False]"  # the pipeline's catalog and the first here forked; not the last
    assert same == "True" and int(packages) > 0
