"""Report writers: `FORMATS[name](analysis, out)` renders one Analysis to a text stream.

Registering a format is one line in FORMATS. Writers stream: nothing builds the whole
document in memory (see jsonstream).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from ..analysis import Analysis
from . import anchore, cyclonedx, native, spdx, table

Writer = Callable[[Analysis, TextIO], None]

FORMATS: dict[str, Writer] = {
    "json": native.write,
    "anchore": anchore.write,
    "table": table.write,
    "cyclonedx": cyclonedx.write,
    "spdx": spdx.write,
}
