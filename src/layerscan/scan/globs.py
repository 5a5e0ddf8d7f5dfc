"""Capture globs as regexes that both Python `re` and Hyperscan accept.

A glob is matched against the whole absolute path ("/var/lib/dpkg/status").
`**/` matches zero or more whole directories, `**` at the end matches anything,
`*` and `?` stay inside one path component, `[...]` is a character class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def glob_to_regex(glob: str) -> str:
    if not glob.startswith("/"):
        glob = "/" + glob
    out: list[str] = ["^"]
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = glob.find("]", i + 2 if glob.startswith("[!", i) or glob.startswith("[^", i) else i + 1)
            if j < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = glob[i + 1 : j]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
            i = j + 1
        else:
            # re.escape() escapes '/' and space in ways Hyperscan also accepts.
            out.append(re.escape(c))
            i += 1
    out.append("$")
    return "".join(out)


class GlobSet:
    """The reference matcher: one alternation over every glob, in Python `re`."""

    def __init__(self, globs: Sequence[str]) -> None:
        self.globs = tuple(globs)
        self._rx = re.compile("|".join(f"(?:{glob_to_regex(g)})" for g in self.globs), re.S) if self.globs else None

    def matches(self, path: str) -> bool:
        return self._rx is not None and self._rx.fullmatch(path) is not None
