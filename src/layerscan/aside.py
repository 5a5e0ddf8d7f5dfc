"""Work done on a second core beside the caller, in a forked child.

The stages after the scan (catalog, report) are Python: threads would take turns on one
core while the others idle. A forked child has the caller's whole state for free, so a
part of such a stage can run there while the caller does the rest.

    with aside(fn) as later:   # fn() starts in a child process, where that is safe
        mine = ...             # the caller's own part, meanwhile
        theirs = later.result()  # fn()'s value, or its exception, pickled back through a pipe
                                 # (a value that does not pickle is computed again here)

Forking is safe only in a process of one thread: a lock that another thread held at the
fork (in libc, OpenSSL, logging...) stays locked in the child for good. So a child is used
only on Linux, with two or more usable cores, when /proc/self/task shows this thread
alone: a one-shot `analyze` after its scan, not the service's threads or a test's; and not
in a process that disable()d it (a batch worker: its siblings already use every core).
Anywhere else fn() runs in-process when its result is asked for, with the same result.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from .errors import LayerscanError

T = TypeVar("T")


class AsideError(LayerscanError):
    """The child died without an answer (killed, out of memory)."""


_enabled = True


def disable() -> None:
    """No child for this process from now on: one of several workers that share the cores."""
    global _enabled
    _enabled = False


def can_fork() -> bool:
    if not _enabled or sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class Later(Generic[T]):
    """fn()'s result, from the child when there is one; see aside()."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._pid = 0
        self._pipe = -1
        if can_fork():
            read, write = os.pipe()
            parent = os.getpid()
            gc.freeze()  # no collection in the child writes to the objects it shares: fewer pages copied
            try:
                self._pid = os.fork()
            except OSError:  # no process to spare: in-process then
                os.close(read)
                os.close(write)
                gc.unfreeze()
                return
            if self._pid == 0:
                os.close(read)
                _die_with_parent(parent)
                _child(fn, write)
            gc.unfreeze()
            os.close(write)
            self._pipe = read

    @property
    def forked(self) -> bool:
        """Whether fn runs in a child; if not, it runs here when result() is called."""
        return self._pid > 0

    def result(self) -> T:
        if not self._pid:
            return self._fn()
        pid, self._pid = self._pid, 0
        with open(self._pipe, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            raise AsideError(f"a helper process died without its result ({_how(status)})")
        ok, value = pickle.loads(data)
        if ok is None:  # a value that does not pickle: this process computes it too
            return self._fn()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def __enter__(self) -> Later[T]:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._pid:  # left without its result (the caller's part failed): no child outlives it
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            os.close(self._pipe)
            self._pid = 0


def aside(fn: Callable[[], T]) -> Later[T]:
    return Later(fn)


def _child(fn: Callable[[], object], pipe: int) -> None:
    """Run fn, send (ok, value) and leave at once: no atexit handler, no flush of buffers
    the parent owns, no finalizer of shared state (connections, locks, temp files)."""
    code = 1
    try:
        try:
            answer: tuple[bool, object] = (True, fn())
        except BaseException as e:
            answer = (False, e)
        try:
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            if answer[0]:
                data = pickle.dumps((None, None))
            else:  # an exception that does not pickle still says what it was
                error = answer[1]
                data = pickle.dumps((False, LayerscanError(f"{type(error).__name__}: {error} ({e})")))
        with open(pipe, "wb") as out:
            out.write(data)
        code = 0
    finally:
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """SIGKILL for this child when the parent dies (killed, say): no child outlives the analysis."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
